using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace MedServe.Repository;

/// <summary>
/// How a model is monitored (MedServe's own <c>monitoring { }</c> block, in config.pbtxt or
/// config.json, or set through the registry): which output element is the score, the decision
/// threshold, the request parameters that name subgroups (only these are stored with a
/// prediction), the margin by which a subgroup may trail the whole, the names of the input
/// features, and the range an output must lie in.
/// </summary>
public sealed partial record MonitoringSpec
{
    public static readonly MonitoringSpec Default = new();

    /// <summary>The output that holds the score; null: the first FP32/FP64 output.</summary>
    public string? ScoreOutput { get; init; }

    /// <summary>The score's element in that output; null: 0 for a [-1, 1] output, 1 (the positive class) for [-1, 2].</summary>
    public int? PositiveIndex { get; init; }

    public double Threshold { get; init; } = 0.5;

    public IReadOnlyList<string> Subgroups { get; init; } = [];

    /// <summary>A subgroup below the whole by more than this (with its interval excluding no gap) is flagged.</summary>
    public double SubgroupMargin { get; init; } = 0.05;

    /// <summary>Names of the input elements in order (e.g. the wdbc columns); empty: named by input and index.</summary>
    public IReadOnlyList<string> FeatureNames { get; init; } = [];

    /// <summary>The range every output element must lie in; outside it (or NaN) is an invalid output.</summary>
    public double? OutputMin { get; init; }

    public double? OutputMax { get; init; }

    /// <summary>The drift window's false-alarm rate (split between the per-feature family and the multivariate test).</summary>
    public double DriftAlpha { get; init; } = 0.05;

    /// <summary>The dataset drifts when at least this share of its features do (Evidently's default).</summary>
    public double DriftShare { get; init; } = 0.5;

    /// <summary>Per feature (by name): a test in place of the one chosen, and its threshold.</summary>
    public IReadOnlyDictionary<string, DriftFeatureOverride> DriftOverrides { get; init; } = new Dictionary<string, DriftFeatureOverride>();

    /// <summary>The grammar of a subgroup parameter's name: it becomes a report's key.</summary>
    [GeneratedRegex("^[a-z][a-z0-9_]{0,63}$")]
    public static partial Regex SubgroupName();

    /// <summary>A text that is equal for equal specs (the record's lists compare by reference).</summary>
    public string Canonical()
    {
        var text = new StringBuilder();
        text.Append(ScoreOutput).Append('|').Append(PositiveIndex).Append('|').Append(Threshold.ToString("R", CultureInfo.InvariantCulture))
            .Append('|').AppendJoin(',', Subgroups).Append('|').Append(SubgroupMargin.ToString("R", CultureInfo.InvariantCulture))
            .Append('|').AppendJoin(',', FeatureNames).Append('|').Append(OutputMin?.ToString("R", CultureInfo.InvariantCulture))
            .Append('|').Append(OutputMax?.ToString("R", CultureInfo.InvariantCulture))
            .Append('|').Append(DriftAlpha.ToString("R", CultureInfo.InvariantCulture)).Append('|').Append(DriftShare.ToString("R", CultureInfo.InvariantCulture))
            .AppendJoin(',', DriftOverrides.OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => $"{o.Key}={o.Value.Test}:{o.Value.Threshold?.ToString("R", CultureInfo.InvariantCulture)}"));
        return text.ToString();
    }

    /// <summary>Writes the spec in config.json's form (the registry stores it so, and writes it into the config it serves).</summary>
    public void Write(System.Text.Json.Utf8JsonWriter w)
    {
        w.WriteStartObject();
        if (ScoreOutput is not null)
        {
            w.WriteString("score_output", ScoreOutput);
        }

        if (PositiveIndex is { } index)
        {
            w.WriteNumber("positive_index", index);
        }

        w.WriteNumber("threshold", Threshold);
        w.WriteStartArray("subgroups");
        foreach (var subgroup in Subgroups)
        {
            w.WriteStringValue(subgroup);
        }

        w.WriteEndArray();
        w.WriteNumber("subgroup_margin", SubgroupMargin);
        if (FeatureNames.Count > 0)
        {
            w.WriteStartArray("feature_names");
            foreach (var name in FeatureNames)
            {
                w.WriteStringValue(name);
            }

            w.WriteEndArray();
        }

        if (OutputMin is not null || OutputMax is not null)
        {
            w.WriteStartObject("output_range");
            if (OutputMin is { } min)
            {
                w.WriteNumber("min", min);
            }

            if (OutputMax is { } max)
            {
                w.WriteNumber("max", max);
            }

            w.WriteEndObject();
        }

        w.WriteStartObject("drift");
        w.WriteNumber("alpha", DriftAlpha);
        w.WriteNumber("share", DriftShare);
        w.WriteStartArray("feature");
        foreach (var (name, custom) in DriftOverrides)
        {
            w.WriteStartObject();
            w.WriteString("name", name);
            if (custom.Test is not null)
            {
                w.WriteString("test", custom.Test);
            }

            if (custom.Threshold is { } threshold)
            {
                w.WriteNumber("threshold", threshold);
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
    }
}

/// <summary>A feature's drift test and threshold, in place of the ones its kind and the reference's size choose.</summary>
public sealed record DriftFeatureOverride(string? Test, double? Threshold);
