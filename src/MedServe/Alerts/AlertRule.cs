using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml;

namespace MedServe.Alerts;

/// <summary>
/// A rule on one monitored figure of one model: it fires when the figure, over the last
/// <see cref="Window"/>, is above (or below) <see cref="Threshold"/> with at least
/// <see cref="MinSamples"/> behind it; it resolves when it no longer is. After any change of state
/// the rule holds it for <see cref="HoldOff"/>, so a figure near its threshold does not flap.
/// </summary>
public sealed partial record AlertRule(string Name, string Model, string Metric, string Comparison, double Threshold, TimeSpan Window, int MinSamples, TimeSpan HoldOff, IReadOnlyList<string> Webhooks)
{
    /// <summary>The figures a rule may watch. feature:NAME is a feature's drift statistic, feature_drifted:NAME 1 when it drifted.</summary>
    public static readonly IReadOnlyList<string> Metrics =
    [
        "error_rate", "p99_latency_ms", "request_rate", "invalid_output_rate",
        "auroc", "auprc", "brier", "calibration_intercept", "calibration_slope", "ece", "sensitivity", "specificity", "ppv", "npv", "estimated_auroc",
        "dataset_drift", "drift_detected", "drifted_share", "multivariate_p", "feature:NAME", "feature_drifted:NAME",
    ];

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    private static partial Regex NameGrammar();

    /// <summary>Reads a rule from its JSON ({"name", "model", "metric", "above" | "below", "window", "min_samples", "hold_off", "webhooks"}); errors name the field.</summary>
    public static AlertRule Parse(JsonElement e, IReadOnlyCollection<string> webhookNames)
    {
        if (e.ValueKind != JsonValueKind.Object)
        {
            throw new AlertRuleException("a rule is a JSON object");
        }

        var name = Text(e, "name") ?? throw new AlertRuleException("'name' is required");
        if (!NameGrammar().IsMatch(name))
        {
            throw new AlertRuleException("'name' must be 1 to 64 of A-Z, a-z, 0-9, '_', '.', '-', starting with a letter or digit");
        }

        var model = Text(e, "model") ?? throw new AlertRuleException("'model' is required");
        if (!MedServe.Repository.ModelNames.IsValid(model))
        {
            throw new AlertRuleException("'model' is not a model name");
        }

        var metric = Text(e, "metric") ?? throw new AlertRuleException("'metric' is required");
        var known = metric.StartsWith("feature:", StringComparison.Ordinal) || metric.StartsWith("feature_drifted:", StringComparison.Ordinal)
            ? metric[(metric.IndexOf(':') + 1)..] is { Length: > 0 and <= 128 }
            : Metrics.Contains(metric);
        if (!known)
        {
            throw new AlertRuleException($"'metric' must be one of {string.Join(", ", Metrics)}");
        }

        var above = Number(e, "above");
        var below = Number(e, "below");
        if ((above is null) == (below is null))
        {
            throw new AlertRuleException("give exactly one of 'above' and 'below' (the threshold)");
        }

        var window = Duration(e, "window") ?? TimeSpan.FromMinutes(5);
        var holdOff = Duration(e, "hold_off") ?? TimeSpan.Zero;
        if (window <= TimeSpan.Zero || window > TimeSpan.FromDays(90) || holdOff < TimeSpan.Zero)
        {
            throw new AlertRuleException("'window' must be above zero and at most 90 days, 'hold_off' not negative");
        }

        var minSamples = Number(e, "min_samples") ?? 1;
        if (minSamples < 1 || minSamples > 10_000_000 || minSamples != Math.Floor(minSamples))
        {
            throw new AlertRuleException("'min_samples' must be a whole number from 1");
        }

        var webhooks = new List<string>();
        if (e.TryGetProperty("webhooks", out var list))
        {
            if (list.ValueKind != JsonValueKind.Array || list.EnumerateArray().Any(w => w.ValueKind != JsonValueKind.String))
            {
                throw new AlertRuleException("'webhooks' must be an array of webhook names");
            }

            webhooks.AddRange(list.EnumerateArray().Select(w => w.GetString()!));
            var unknown = webhooks.FirstOrDefault(w => !webhookNames.Contains(w));
            if (unknown is not null)
            {
                throw new AlertRuleException($"'webhooks': no webhook is configured as '{(unknown.Length > 64 ? unknown[..64] : unknown)}' (MedServe:Alerts:Webhooks names them)");
            }
        }

        return new AlertRule(name, model, metric, above is null ? "below" : "above", (above ?? below)!.Value, window, (int)minSamples, holdOff, webhooks);
    }

    public bool Breached(double value) => Comparison == "above" ? value > Threshold : value < Threshold;

    public void Write(Utf8JsonWriter w)
    {
        w.WriteString("name", Name);
        w.WriteString("model", Model);
        w.WriteString("metric", Metric);
        w.WriteNumber(Comparison, Threshold);
        w.WriteString("window", XmlConvert.ToString(Window));
        w.WriteNumber("min_samples", MinSamples);
        w.WriteString("hold_off", XmlConvert.ToString(HoldOff));
        w.WriteStartArray("webhooks");
        foreach (var webhook in Webhooks)
        {
            w.WriteStringValue(webhook);
        }

        w.WriteEndArray();
    }

    private static string? Text(JsonElement e, string field) =>
        !e.TryGetProperty(field, out var v) ? null
        : v.ValueKind == JsonValueKind.String && v.GetString() is { Length: > 0 and <= 256 } s ? s
        : throw new AlertRuleException($"'{field}' must be a string of 1 to 256 characters");

    private static double? Number(JsonElement e, string field) =>
        !e.TryGetProperty(field, out var v) ? null
        : v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out var d) && double.IsFinite(d) ? d
        : throw new AlertRuleException($"'{field}' must be a finite number");

    /// <summary>An ISO 8601 duration (PT5M, PT30S, P1D).</summary>
    private static TimeSpan? Duration(JsonElement e, string field)
    {
        if (Text(e, field) is not { } text)
        {
            return null;
        }

        try
        {
            return XmlConvert.ToTimeSpan(text);
        }
        catch (FormatException)
        {
            throw new AlertRuleException($"'{field}' must be an ISO 8601 duration such as PT5M");
        }
    }
}

public sealed class AlertRuleException(string message) : Exception(message);

/// <summary>A rule's state change: what the figure was, against what, when. Never patient data: a model's aggregate figure only.</summary>
public sealed record AlertEvent(long Sequence, string Rule, string Model, string Metric, string State, double? Value, double Threshold, string Comparison, long Samples, DateTimeOffset At)
{
    public void Write(Utf8JsonWriter w)
    {
        w.WriteNumber("sequence", Sequence);
        w.WriteString("rule", Rule);
        w.WriteString("model", Model);
        w.WriteString("metric", Metric);
        w.WriteString("state", State);
        if (Value is { } value && double.IsFinite(value))
        {
            w.WriteNumber("value", value);
        }

        w.WriteNumber(Comparison, Threshold);
        w.WriteNumber("samples", Samples);
        w.WriteString("at", At.ToString("O", CultureInfo.InvariantCulture));
    }
}
