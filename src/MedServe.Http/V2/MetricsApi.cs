using System.Globalization;
using System.Text;
using MedServe.Lifecycle;
using MedServe.Security;
using MedServe.Statistics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace MedServe.Http.V2;

/// <summary>
/// GET /metrics in Prometheus text format. Triton's nv_inference_* counters are read from the
/// per-version statistics the scheduler keeps anyway, so scraping adds nothing to the hot path;
/// the latency and batch-size histograms are MedServe's own. Labels carry model and version
/// names only, never request data.
/// </summary>
public static class MetricsApi
{
    private static readonly (string Name, string Help, Func<ModelStatistics, long> Read, bool Microseconds)[] Counters =
    [
        ("nv_inference_request_success", "Number of successful inference requests, all batch sizes", s => s.Success.Count, false),
        ("nv_inference_count", "Number of inferences performed (a batch of n counts n)", s => s.InferenceCount, false),
        ("nv_inference_exec_count", "Number of model executions performed (a batch counts once)", s => s.ExecutionCount, false),
        ("nv_inference_request_duration_us", "Cumulative end-to-end inference request duration in microseconds", s => s.Success.Nanoseconds, true),
        ("nv_inference_queue_duration_us", "Cumulative inference queuing duration in microseconds", s => s.Queue.Nanoseconds, true),
        ("nv_inference_compute_input_duration_us", "Cumulative compute input duration in microseconds", s => s.ComputeInput.Nanoseconds, true),
        ("nv_inference_compute_infer_duration_us", "Cumulative compute inference duration in microseconds", s => s.ComputeInfer.Nanoseconds, true),
        ("nv_inference_compute_output_duration_us", "Cumulative compute output duration in microseconds", s => s.ComputeOutput.Nanoseconds, true),
    ];

    private static readonly (FailureReason Reason, string Label)[] Reasons =
        [(FailureReason.Rejected, "REJECTED"), (FailureReason.Canceled, "CANCELED"), (FailureReason.Backend, "BACKEND"), (FailureReason.Other, "OTHER")];

    public static IEndpointRouteBuilder MapMetricsApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/metrics", (HttpContext context, ModelManager models, MedServe.Statistics.FrontendLatency frontend, IEnumerable<MedServe.Diagnostics.IMetricsContributor> contributors) =>
        {
            context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            var text = new StringBuilder(Render(models.ReadyVersions(), frontend));
            foreach (var contributor in contributors)
            {
                contributor.Write(text);
            }

            return context.Response.WriteAsync(text.ToString());
        }).RequireAuthorization(Scopes.ModelsRead);
        return routes;
    }

    public static string Render(IReadOnlyList<ModelVersion> versions, MedServe.Statistics.FrontendLatency? frontend = null)
    {
        var text = new StringBuilder(4096);
        foreach (var (name, help, read, micros) in Counters)
        {
            Header(text, name, help, "counter");
            foreach (var version in versions)
            {
                var value = read(version.Statistics);
                Sample(text, name, Labels(version), micros ? value / 1000 : value);
            }
        }

        Header(text, "nv_inference_request_failure", "Number of failed inference requests, by reason", "counter");
        foreach (var version in versions)
        {
            foreach (var (reason, label) in Reasons)
            {
                Sample(text, "nv_inference_request_failure", Labels(version) + $",reason=\"{label}\"", version.Statistics.FailuresBy(reason));
            }
        }

        Header(text, "nv_inference_pending_request_count", "Instantaneous number of requests queued or running", "gauge");
        foreach (var version in versions)
        {
            Sample(text, "nv_inference_pending_request_count", Labels(version), version.PendingCount);
        }

        WriteHistogram(text, versions, "medserve_inference_request_duration_seconds",
            "End-to-end duration of successful inference requests", s => s.RequestDuration, 1e-9);
        WriteHistogram(text, versions, "medserve_inference_batch_size",
            "Rows per model execution (batch size)", s => s.BatchSize, 1);
        if (frontend is not null)
        {
            const string name = "medserve_http_request_duration_seconds";
            Header(text, name, "End-to-end request latency at the frontend (journal wait included), by route template, model and status class", "histogram");
            foreach (var ((route, model, status), histogram) in frontend.Series)
            {
                WriteBuckets(text, name, $"route=\"{Escape(route)}\",model=\"{Escape(model)}\",status=\"{status}\"", histogram, 1e-9);
            }
        }

        return text.ToString();
    }

    private static void WriteHistogram(StringBuilder text, IReadOnlyList<ModelVersion> versions, string name, string help, Func<ModelStatistics, Histogram> pick, double scale)
    {
        Header(text, name, help, "histogram");
        foreach (var version in versions)
        {
            WriteBuckets(text, name, Labels(version), pick(version.Statistics), scale);
        }
    }

    private static void WriteBuckets(StringBuilder text, string name, string labels, Histogram histogram, double scale)
    {
        var cumulative = histogram.CumulativeCounts();
        for (var i = 0; i < histogram.UpperBounds.Count; i++)
        {
            var bound = (histogram.UpperBounds[i] * scale).ToString("R", CultureInfo.InvariantCulture);
            text.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative[i]}\n");
        }

        text.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative[^1]}\n");
        text.Append(CultureInfo.InvariantCulture, $"{name}_sum{{{labels}}} {(histogram.Sum * scale).ToString("R", CultureInfo.InvariantCulture)}\n");
        text.Append(CultureInfo.InvariantCulture, $"{name}_count{{{labels}}} {cumulative[^1]}\n");
    }

    private static void Header(StringBuilder text, string name, string help, string type) =>
        text.Append(CultureInfo.InvariantCulture, $"# HELP {name} {help}\n# TYPE {name} {type}\n");

    private static void Sample(StringBuilder text, string name, string labels, long value) =>
        text.Append(CultureInfo.InvariantCulture, $"{name}{{{labels}}} {value}\n");

    private static string Labels(ModelVersion version) =>
        $"model=\"{Escape(version.Name)}\",version=\"{version.Version.ToString(CultureInfo.InvariantCulture)}\"";

    private static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
