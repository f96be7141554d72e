using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml;

namespace MedServe.Experiments;

public sealed class ExperimentException(string message, int status = StatusCodes.Status400BadRequest) : Exception(message)
{
    public int Status { get; } = status;
}

/// <summary>An arm: a version (or an alias the registry resolves to one) and its share of traffic.</summary>
public sealed record Arm(string Name, long? Version, string? Alias, double Weight);

/// <summary>A staged rollout of the second arm: its share steps up while the guardrails hold.</summary>
public sealed record Rollout(IReadOnlyList<double> Steps, TimeSpan MinDuration, int MinSamples);

/// <summary>
/// The limits a candidate must keep. The defaults protect a rollout given none: no invalid output
/// (NaN, infinite, or outside the monitoring spec's range), an error rate at most 1%, a p99 at most
/// twice the control's, each judged once an arm has <see cref="MinSamples"/> requests.
/// </summary>
/// <remarks>
/// Where outcomes exist (both arms with at least 20, both classes), the candidate must also be
/// non-inferior to the control: its AUROC not below by more than <see cref="AurocMargin"/>, its
/// Brier score not above by more than <see cref="BrierMargin"/>. A breach is declared when the
/// always-valid 95% interval of the difference lies wholly beyond the margin (a one-sided
/// always-valid test at 2.5%), so checking every few seconds is safe.
/// </remarks>
public sealed record Guardrails(double MaxErrorRate = 0.01, long MaxInvalidOutputs = 0, double MaxP99Ratio = 2, double? MinShadowAgreement = null, int MinSamples = 50,
    double AurocMargin = 0.05, double BrierMargin = 0.02);

/// <summary>
/// What an experiment intends: its model, how units are assigned (by patient or by request), its
/// arms and shadows, and optionally a rollout with guardrails. Read from the API's JSON; every
/// field checked, errors naming it.
/// </summary>
public sealed partial record ExperimentSpec(string Name, string Model, string Unit, IReadOnlyList<Arm> Arms, IReadOnlyList<Arm> Shadows, Rollout? Rollout, Guardrails Guardrails)
{
    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    private static partial Regex NameGrammar();

    public static ExperimentSpec Parse(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Object)
        {
            throw new ExperimentException("an experiment is a JSON object");
        }

        var name = Text(e, "name") ?? throw new ExperimentException("'name' is required");
        if (!NameGrammar().IsMatch(name))
        {
            throw new ExperimentException("'name' must be 1 to 64 of A-Z, a-z, 0-9, '_', '.', '-', starting with a letter or digit");
        }

        var model = Text(e, "model") ?? throw new ExperimentException("'model' is required");
        if (!MedServe.Repository.ModelNames.IsValid(model))
        {
            throw new ExperimentException("'model' is not a model name");
        }

        var unit = Text(e, "unit") ?? "patient";
        if (unit is not ("patient" or "request"))
        {
            throw new ExperimentException("'unit' must be \"patient\" or \"request\"");
        }

        var arms = ReadArms(e, "arms", weighted: true);
        if (arms.Count is < 1 or > 8)
        {
            throw new ExperimentException("'arms' must hold 1 to 8 arms");
        }

        var shadows = e.TryGetProperty("shadow", out _) ? ReadArms(e, "shadow", weighted: false) : [];
        var names = arms.Concat(shadows).Select(a => a.Name).ToList();
        if (names.Distinct(StringComparer.Ordinal).Count() != names.Count)
        {
            throw new ExperimentException("every arm and shadow needs its own name");
        }

        if (!(arms.Sum(a => a.Weight) > 0))
        {
            throw new ExperimentException("the arms' weights must add up to more than 0");
        }

        Rollout? rollout = null;
        if (e.TryGetProperty("rollout", out var r))
        {
            if (r.ValueKind != JsonValueKind.Object || arms.Count != 2)
            {
                throw new ExperimentException("'rollout' is an object, for an experiment of two arms: the control first, the candidate second");
            }

            var steps = r.TryGetProperty("steps", out var s) && s.ValueKind == JsonValueKind.Array
                ? s.EnumerateArray().Select(v => v.ValueKind == JsonValueKind.Number ? v.GetDouble() : double.NaN).ToList()
                : throw new ExperimentException("'rollout.steps' is required: the candidate's percentages, rising, ending at 100");
            if (steps.Count == 0 || steps.Any(v => !(v > 0 && v <= 100)) || steps.Zip(steps.Skip(1)).Any(p => p.Second <= p.First) || steps[^1] != 100)
            {
                throw new ExperimentException("'rollout.steps' must be rising percentages above 0, ending at 100");
            }

            var minDuration = Duration(r, "min_duration", "rollout.") ?? TimeSpan.FromMinutes(10);
            var minSamples = r.TryGetProperty("min_samples", out var m) ? (m.TryGetInt32(out var n) && n >= 0 ? n : throw new ExperimentException("'rollout.min_samples' must be a whole number")) : 500;
            rollout = new Rollout(steps, minDuration, minSamples);
        }

        var guardrails = new Guardrails();
        if (e.TryGetProperty("guardrails", out var g))
        {
            if (g.ValueKind != JsonValueKind.Object)
            {
                throw new ExperimentException("'guardrails' is an object");
            }

            guardrails = new Guardrails(
                Number(g, "max_error_rate", 0, 1) ?? guardrails.MaxErrorRate,
                (long)(Number(g, "max_invalid_outputs", 0, long.MaxValue) ?? guardrails.MaxInvalidOutputs),
                Number(g, "max_p99_ratio", 1, 1000) ?? guardrails.MaxP99Ratio,
                Number(g, "min_shadow_agreement", 0, 1),
                (int)(Number(g, "min_samples", 1, 1_000_000) ?? guardrails.MinSamples),
                Number(g, "auroc_margin", 0, 1) ?? guardrails.AurocMargin,
                Number(g, "brier_margin", 0, 1) ?? guardrails.BrierMargin);
        }

        return new ExperimentSpec(name, model, unit, arms, shadows, rollout, guardrails);
    }

    public void Write(Utf8JsonWriter w)
    {
        w.WriteString("name", Name);
        w.WriteString("model", Model);
        w.WriteString("unit", Unit);
        WriteArms(w, "arms", Arms, weighted: true);
        WriteArms(w, "shadow", Shadows, weighted: false);
        if (Rollout is { } rollout)
        {
            w.WriteStartObject("rollout");
            w.WriteStartArray("steps");
            foreach (var step in rollout.Steps)
            {
                w.WriteNumberValue(step);
            }

            w.WriteEndArray();
            w.WriteString("min_duration", XmlConvert.ToString(rollout.MinDuration));
            w.WriteNumber("min_samples", rollout.MinSamples);
            w.WriteEndObject();
        }

        w.WriteStartObject("guardrails");
        w.WriteNumber("max_error_rate", Guardrails.MaxErrorRate);
        w.WriteNumber("max_invalid_outputs", Guardrails.MaxInvalidOutputs);
        w.WriteNumber("max_p99_ratio", Guardrails.MaxP99Ratio);
        if (Guardrails.MinShadowAgreement is { } agreement)
        {
            w.WriteNumber("min_shadow_agreement", agreement);
        }

        w.WriteNumber("min_samples", Guardrails.MinSamples);
        w.WriteNumber("auroc_margin", Guardrails.AurocMargin);
        w.WriteNumber("brier_margin", Guardrails.BrierMargin);
        w.WriteEndObject();
    }

    private static void WriteArms(Utf8JsonWriter w, string field, IReadOnlyList<Arm> arms, bool weighted)
    {
        w.WriteStartArray(field);
        foreach (var arm in arms)
        {
            w.WriteStartObject();
            w.WriteString("name", arm.Name);
            if (arm.Version is { } version)
            {
                w.WriteString("version", version.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            if (arm.Alias is { } alias)
            {
                w.WriteString("alias", alias);
            }

            if (weighted)
            {
                w.WriteNumber("weight", arm.Weight);
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    private static List<Arm> ReadArms(JsonElement e, string field, bool weighted)
    {
        if (!e.TryGetProperty(field, out var list) || list.ValueKind != JsonValueKind.Array)
        {
            throw new ExperimentException($"'{field}' must be an array of arms");
        }

        var arms = new List<Arm>();
        var index = 0;
        foreach (var a in list.EnumerateArray())
        {
            var at = $"{field}[{index++}]";
            if (a.ValueKind != JsonValueKind.Object)
            {
                throw new ExperimentException($"{at} is an object");
            }

            var name = Text(a, "name", at) ?? throw new ExperimentException($"{at}: 'name' is required");
            if (!NameGrammar().IsMatch(name))
            {
                throw new ExperimentException($"{at}: 'name' must be 1 to 64 of A-Z, a-z, 0-9, '_', '.', '-'");
            }

            long? version = null;
            if (a.TryGetProperty("version", out var v))
            {
                version = v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) && n > 0 ? n
                    : v.ValueKind == JsonValueKind.String && long.TryParse(v.GetString(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var parsed) && parsed > 0 ? parsed
                    : throw new ExperimentException($"{at}: 'version' must be a positive integer version");
            }

            var alias = Text(a, "alias", at);
            if ((version is null) == (alias is null))
            {
                throw new ExperimentException($"{at}: give exactly one of 'version' and 'alias'");
            }

            var weight = weighted ? Number(a, "weight", 0, 1_000_000, at) ?? throw new ExperimentException($"{at}: 'weight' is required") : 0;
            arms.Add(new Arm(name, version, alias, weight));
        }

        return arms;
    }

    private static string? Text(JsonElement e, string field, string? at = null) =>
        !e.TryGetProperty(field, out var v) ? null
        : v.ValueKind == JsonValueKind.String && v.GetString() is { Length: > 0 and <= 128 } s ? s
        : throw new ExperimentException($"{(at is null ? "" : at + ": ")}'{field}' must be a string of 1 to 128 characters");

    private static double? Number(JsonElement e, string field, double min, double max, string? at = null) =>
        !e.TryGetProperty(field, out var v) ? null
        : v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out var d) && d >= min && d <= max ? d
        : throw new ExperimentException($"{(at is null ? "" : at + ": ")}'{field}' must be a number from {min} to {max}");

    private static TimeSpan? Duration(JsonElement e, string field, string prefix)
    {
        if (Text(e, field) is not { } text)
        {
            return null;
        }

        try
        {
            var duration = XmlConvert.ToTimeSpan(text);
            return duration >= TimeSpan.Zero ? duration : throw new FormatException();
        }
        catch (FormatException)
        {
            throw new ExperimentException($"'{prefix}{field}' must be an ISO 8601 duration such as PT10M or PT5S");
        }
    }
}
