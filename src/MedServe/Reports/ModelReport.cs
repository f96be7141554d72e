using System.Net;
using System.Text;
using System.Text.Json;
using MedServe.Alerts;
using MedServe.Compliance.Encryption;
using MedServe.Compliance.Predictions;
using MedServe.Drift;
using MedServe.Lifecycle;
using MedServe.Predictions;
using MedServe.Stats;
using MedServe.Stats.Clinical;

namespace MedServe.Reports;

/// <summary>
/// One self-contained HTML page per model: the ROC and calibration curves, the performance
/// figures and the subgroup table, drift per feature over time, and the model's alerts. The
/// charting library (uPlot, MIT, from npm) and its licence are inside the page; the data is one
/// JSON block the page's script draws from. Aggregates only: the ROC curve carries rates, never
/// the scores that are its thresholds.
/// </summary>
public sealed class ModelReport(IPredictionStore store, PredictionProjectionService projection, EnvelopeEncryption envelopes, ModelManager models,
    IDriftReferenceStore references, IAlertStore alerts, Microsoft.Extensions.Options.IOptions<Hosting.ServerOptions> options, TimeProvider time)
{
    /// <summary>Drift is drawn over this many equal windows of the period.</summary>
    public const int DriftWindows = 8;

    public static readonly TimeSpan DefaultPeriod = TimeSpan.FromDays(7);

    public async Task<string> BuildAsync(string model, string? version, DateTimeOffset? from, DateTimeOffset? to, CancellationToken cancellationToken)
    {
        var end = to ?? time.GetUtcNow();
        var start = from ?? end - DefaultPeriod;
        var performance = Document(await Outcomes.OutcomesApi.PerformanceReportAsync(model, version, start, end, null, store, projection, envelopes, models, cancellationToken).ConfigureAwait(false));
        (double[] Fpr, double[] Tpr)? roc = null;
        if (performance.RootElement.TryGetProperty("metrics", out _))
        {
            var (_, judged, _) = await Outcomes.OutcomesApi.JudgedAsync(model, version, start, end, store, projection, envelopes, models, cancellationToken).ConfigureAwait(false);
            var binary = judged.Where(j => j.Label is not null).ToList();
            roc = ClinicalMetrics.RocCurve([.. binary.Select(j => j.Label!.Value)], [.. binary.Select(j => j.Score)]);
        }

        var windows = new List<(DateTimeOffset From, DateTimeOffset To, JsonDocument? Report)>();
        JsonDocument? whole = null;
        string? noDrift = null;
        try
        {
            var write = await DriftApi.DriftReportAsync(model, version, start, end, references, store, projection, envelopes, models, options.Value.ResolvedModelRepository, cancellationToken).ConfigureAwait(false);
            if (write is null)
            {
                noDrift = $"model '{model}' has no drift reference";
            }
            else
            {
                whole = Document(write);
                var step = (end - start) / DriftWindows;
                for (var i = 0; i < DriftWindows; i++)
                {
                    var (a, b) = (start + (step * i), i == DriftWindows - 1 ? end : start + (step * (i + 1)));
                    var each = await DriftApi.DriftReportAsync(model, version, a, b, references, store, projection, envelopes, models, options.Value.ResolvedModelRepository, cancellationToken).ConfigureAwait(false);
                    windows.Add((a, b, each is null ? null : Document(each)));
                }
            }
        }
        catch (StatisticsException e)
        {
            noDrift = e.Message;
        }

        var events = (await alerts.EventsAsync(1000, cancellationToken).ConfigureAwait(false)).Where(e => e.Model == model).ToList();
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            // The default encoder escapes <, > and &: the block cannot close its script element.
            w.WriteStartObject();
            w.WriteString("model", model);
            if (version is not null)
            {
                w.WriteString("version", version);
            }

            w.WriteString("generated_at", time.GetUtcNow().ToString("O"));
            w.WriteString("from", start.ToString("O"));
            w.WriteString("to", end.ToString("O"));
            w.WritePropertyName("performance");
            performance.RootElement.WriteTo(w);
            if (roc is { } curve)
            {
                w.WriteStartObject("roc");
                Numbers(w, "fpr", curve.Fpr);
                Numbers(w, "tpr", curve.Tpr);
                w.WriteEndObject();
            }

            w.WriteStartObject("drift");
            if (noDrift is not null)
            {
                w.WriteString("none", noDrift);
            }

            w.WriteStartArray("windows");
            foreach (var (a, b, report) in windows)
            {
                w.WriteStartObject();
                w.WriteString("from", a.ToString("O"));
                w.WriteString("to", b.ToString("O"));
                var root = report?.RootElement;
                w.WriteNumber("rows", root?.GetProperty("window_rows").GetInt32() ?? 0);
                if (root is { } r && r.TryGetProperty("features", out var features))
                {
                    w.WriteBoolean("drift_detected", r.GetProperty("drift_detected").GetBoolean());
                    w.WriteStartObject("features");
                    foreach (var feature in features.EnumerateArray())
                    {
                        w.WriteNumber(feature.GetProperty("name").GetString()!, feature.GetProperty("statistic").GetDouble());
                    }

                    w.WriteEndObject();
                }
                else
                {
                    w.WriteString("insufficient", root?.TryGetProperty("insufficient", out var why) == true ? why.GetString() : "no reference");
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();
            if (whole is not null)
            {
                w.WritePropertyName("latest");
                whole.RootElement.WriteTo(w);
            }

            w.WriteEndObject();
            w.WriteStartArray("alerts");
            foreach (var e in events)
            {
                w.WriteStartObject();
                e.Write(w);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        performance.Dispose();
        whole?.Dispose();
        foreach (var window in windows)
        {
            window.Report?.Dispose();
        }

        return Page(Encoding.UTF8.GetString(buffer.ToArray()));
    }

    private static string Page(string data) => $$"""
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>MedServe report</title>
        <style>{{Resource("uPlot.css")}}
        body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
        table { border-collapse: collapse; margin: 1em 0; }
        th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
        .chart { display: inline-block; margin: 0 1em 1em 0; }
        .note { color: #666; }
        </style>
        </head>
        <body>
        <header><h1 id="title">MedServe report</h1><p id="subtitle"></p></header>
        <main id="report"></main>
        <footer><details><summary>Licences</summary><p>Charts drawn with uPlot 1.6.32, bundled into this page:</p><pre>{{WebUtility.HtmlEncode(Resource("uPlot.LICENSE"))}}</pre></details></footer>
        <script type="application/json" id="report-data">{{data}}</script>
        <script>{{Resource("uPlot.js")}}</script>
        <script>{{Resource("report.js")}}</script>
        </body>
        </html>
        """;

    private static string Resource(string name)
    {
        using var stream = typeof(ModelReport).Assembly.GetManifestResourceStream(name) ?? throw new InvalidOperationException($"the report's resource {name} is not in the assembly");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    private static JsonDocument Document(Action<Utf8JsonWriter> write) => Http.V2.ApiResponses.Render(write);

    private static void Numbers(Utf8JsonWriter w, string name, double[] values)
    {
        w.WriteStartArray(name);
        foreach (var v in values)
        {
            w.WriteNumberValue(v);
        }

        w.WriteEndArray();
    }
}
