using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using MedServe.Compliance.Encryption;
using MedServe.Compliance.Predictions;
using MedServe.Drift;
using MedServe.Lifecycle;
using MedServe.Predictions;
using MedServe.Stats;

namespace MedServe.Alerts;

/// <summary>
/// The figure a rule watches, over its window, with the number of samples behind it. Serving
/// figures (error rate, p99 latency, request rate) come from the models' own counters, sampled
/// at each evaluation and differenced across the window; invalid outputs from the logged
/// predictions; clinical and drift figures from the same reports the API answers with.
/// </summary>
public sealed class MonitoredFigures(ModelManager models, IPredictionStore store, PredictionProjectionService projection, EnvelopeEncryption envelopes,
    IDriftReferenceStore references, Microsoft.Extensions.Options.IOptions<Hosting.ServerOptions> options)
{
    /// <summary>Counter samples kept per model: enough for a day of windows at the default interval.</summary>
    private const int SamplesKept = 6000;

    private readonly ConcurrentDictionary<string, List<Snapshot>> _snapshots = new(StringComparer.Ordinal);

    private sealed record Snapshot(DateTimeOffset At, long Success, long Fail, long[] Buckets);

    /// <summary>Takes a sample of every model's counters (success, failure, the request-duration histogram).</summary>
    public void Sample(DateTimeOffset now)
    {
        foreach (var group in models.ReadyVersions().GroupBy(v => v.Name))
        {
            long success = 0, fail = 0;
            long[]? buckets = null;
            foreach (var version in group)
            {
                success += version.Statistics.Success.Count;
                fail += version.Statistics.Fail.Count;
                var counts = version.Statistics.RequestDuration.CumulativeCounts();
                buckets ??= new long[counts.Length];
                for (var i = 0; i < counts.Length; i++)
                {
                    buckets[i] += counts[i];
                }
            }

            var list = _snapshots.GetOrAdd(group.Key, _ => []);
            lock (list)
            {
                list.Add(new Snapshot(now, success, fail, buckets ?? []));
                if (list.Count > SamplesKept)
                {
                    list.RemoveRange(0, list.Count - SamplesKept);
                }
            }
        }
    }

    public async Task<(double? Value, long Samples)> FigureAsync(AlertRule rule, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var from = now - rule.Window;
        switch (rule.Metric)
        {
            case "error_rate" or "p99_latency_ms" or "request_rate":
                return Serving(rule, from, now);
            case "invalid_output_rate":
                return await InvalidOutputsAsync(rule.Model, from, now, cancellationToken).ConfigureAwait(false);
            case "estimated_auroc":
            {
                using var report = Document(await Outcomes.OutcomesApi.PerformanceReportAsync(rule.Model, null, from, now, null, store, projection, envelopes, models, cancellationToken).ConfigureAwait(false));
                return report.RootElement.TryGetProperty("estimated", out var estimated)
                    ? (estimated.GetProperty("auroc").GetDouble(), estimated.GetProperty("n").GetInt64())
                    : (null, 0);
            }

            case "auroc" or "auprc" or "brier" or "calibration_intercept" or "calibration_slope" or "ece" or "sensitivity" or "specificity" or "ppv" or "npv":
            {
                using var report = Document(await Outcomes.OutcomesApi.PerformanceReportAsync(rule.Model, null, from, now, null, store, projection, envelopes, models, cancellationToken).ConfigureAwait(false));
                var n = report.RootElement.GetProperty("n").GetInt64();
                return report.RootElement.TryGetProperty("metrics", out var metrics) && metrics.TryGetProperty(rule.Metric, out var metric)
                    ? (metric.GetProperty("value").GetDouble(), n)
                    : (null, n);
            }

            default:
                return await DriftAsync(rule, from, now, cancellationToken).ConfigureAwait(false);
        }
    }

    private (double? Value, long Samples) Serving(AlertRule rule, DateTimeOffset from, DateTimeOffset now)
    {
        if (!_snapshots.TryGetValue(rule.Model, out var list))
        {
            return (null, 0);
        }

        Snapshot first, last;
        int spanned;
        lock (list)
        {
            if (list.Count == 0)
            {
                return (null, 0);
            }

            last = list[^1];
            // The newest sample at or before the window's start (the window's baseline), else the oldest kept.
            first = list.LastOrDefault(s => s.At <= from) ?? list[0];
            spanned = list.Count(s => s.At >= first.At);
        }

        // A reloaded version starts its counters again: a count that fell is read from zero.
        var reset = last.Success < first.Success || last.Fail < first.Fail;
        var success = last.Success - (reset ? 0 : first.Success);
        var fail = last.Fail - (reset ? 0 : first.Fail);
        var requests = success + fail;
        switch (rule.Metric)
        {
            case "request_rate":
                // Its samples are the counter samples the window spans: a quiet model is judged too, so a fall in traffic can alert.
                var seconds = (last.At - first.At).TotalSeconds;
                return seconds > 0 ? (requests / seconds, spanned) : (null, spanned);
            case "error_rate":
                return requests > 0 ? ((double)fail / requests, requests) : (null, 0);
            default:
                var buckets = last.Buckets.Select((c, i) => c - (reset || first.Buckets.Length != last.Buckets.Length ? 0 : first.Buckets[i])).ToArray();
                return MedServe.Statistics.Histogram.Quantile(MedServe.Statistics.Histogram.LatencyBucketsNs, buckets, 0.99) is { } p99 ? (p99 / 1e6, buckets[^1]) : (null, 0);
        }
    }

    /// <summary>The share of the window's logged predictions with an output element that is NaN, infinite, or outside the spec's range.</summary>
    private async Task<(double? Value, long Samples)> InvalidOutputsAsync(string model, DateTimeOffset from, DateTimeOffset now, CancellationToken cancellationToken)
    {
        Repository.MonitoringSpec spec;
        try
        {
            spec = models.Find(model, null).Config.Monitoring;
        }
        catch (Inference.InferenceException)
        {
            spec = Repository.MonitoringSpec.Default;
        }

        await projection.CatchUpAsync(cancellationToken).ConfigureAwait(false);
        long total = 0, invalid = 0;
        foreach (var prediction in await store.QueryAsync(new PredictionQuery(model, null, from, now, null, 0, 100_000), cancellationToken).ConfigureAwait(false))
        {
            if (prediction.Payload.Length == 0)
            {
                continue;
            }

            total++;
            var decoded = PredictionPayload.Decode(envelopes.Decrypt(prediction.Payload, Encoding.UTF8.GetBytes(prediction.RequestId)));
            invalid += InvalidOutput(decoded, spec) ? 1 : 0;
        }

        return total > 0 ? ((double)invalid / total, total) : (null, 0);
    }

    /// <summary>Whether any floating-point output element is NaN, infinite, or outside the spec's declared range.</summary>
    public static bool InvalidOutput(DecodedPrediction prediction, Repository.MonitoringSpec spec) =>
        prediction.Outputs.Any(o => o.Data is not null && OutputChecks.Invalid(spec, o.DataType, o.Data));

    private async Task<(double? Value, long Samples)> DriftAsync(AlertRule rule, DateTimeOffset from, DateTimeOffset now, CancellationToken cancellationToken)
    {
        Action<Utf8JsonWriter>? write;
        try
        {
            write = await DriftApi.DriftReportAsync(rule.Model, null, from, now, references, store, projection, envelopes, models, options.Value.ResolvedModelRepository, cancellationToken).ConfigureAwait(false);
        }
        catch (StatisticsException)
        {
            return (null, 0);
        }

        if (write is null)
        {
            return (null, 0);
        }

        using var report = Document(write);
        var root = report.RootElement;
        var rows = root.GetProperty("window_rows").GetInt64();
        if (!root.TryGetProperty("features", out var features))
        {
            return (null, rows);
        }

        double Flag(string name) => root.GetProperty(name).GetBoolean() ? 1 : 0;
        JsonElement? Feature(string name) => features.EnumerateArray().Cast<JsonElement?>().FirstOrDefault(f => f!.Value.GetProperty("name").GetString() == name);
        return rule.Metric switch
        {
            "dataset_drift" => (Flag("dataset_drift"), rows),
            "drift_detected" => (Flag("drift_detected"), rows),
            "drifted_share" => (root.GetProperty("drifted_share").GetDouble(), rows),
            "multivariate_p" => root.TryGetProperty("multivariate", out var m) ? (m.GetProperty("p_value").GetDouble(), rows) : (null, rows),
            var f when f.StartsWith("feature_drifted:", StringComparison.Ordinal) => Feature(f["feature_drifted:".Length..]) is { } e ? (e.GetProperty("drifted").GetBoolean() ? 1 : 0, rows) : (null, rows),
            var f when f.StartsWith("feature:", StringComparison.Ordinal) => Feature(f["feature:".Length..]) is { } e ? (e.GetProperty("statistic").GetDouble(), rows) : (null, rows),
            _ => (null, 0),
        };
    }

    private static JsonDocument Document(Action<Utf8JsonWriter> write) => Http.V2.ApiResponses.Render(write);
}
