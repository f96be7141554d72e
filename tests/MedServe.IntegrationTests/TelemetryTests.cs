using System.Diagnostics;
using System.Net;
using System.Text;
using MedServe.IntegrationTests.Support;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace MedServe.IntegrationTests;

/// <summary>
/// Traces and metrics on OpenTelemetry: an incoming traceparent continues into MedServe's spans
/// (frontend, infer, scheduler, backend, journal) with the journal's request id on the trace;
/// and the canary: a patient id and an input value sent with the request appear in no span and
/// no metric point.
/// </summary>
public sealed class TelemetryTests
{
    private const string PatientCanary = "MRN-CANARY-7731";
    private const string InputCanary = "4242.25";

    [Fact]
    public async Task A_traceparent_continues_through_every_stage_and_no_patient_data_reaches_the_exporters()
    {
        var spans = new List<Activity>();
        var metrics = new List<Metric>();
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?> { ["MedServe:Telemetry:Enabled"] = "true" }, configure: builder =>
        {
            builder.Services.ConfigureOpenTelemetryTracerProvider(tracing => tracing.AddInMemoryExporter(spans));
            builder.Services.ConfigureOpenTelemetryMeterProvider(meters => meters.AddInMemoryExporter(metrics));
        });
        using var client = server.Client(server.AdminKey);
        var trace = ActivityTraceId.CreateRandom();
        var parent = ActivitySpanId.CreateRandom();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v2/models/risk/infer")
        {
            Content = new StringContent($$"""{"parameters":{"patient_id":"{{PatientCanary}}"},"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[{{InputCanary}}{{string.Concat(Enumerable.Repeat(",0.5", 29))}}]}]}""",
                Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("traceparent", $"00-{trace}-{parent}-01");
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var requestId = response.Headers.GetValues("X-Request-Id").Single();

        // The server's span ends once the response is complete: wait (bounded) for it to be exported.
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (!Snapshot(spans).Any(s => s.TraceId == trace && s.Kind == ActivityKind.Server))
        {
            await Task.Delay(20, deadline.Token);
        }

        var ours = Snapshot(spans).Where(s => s.TraceId == trace).ToList();
        var serverSpan = ours.Single(s => s.Kind == ActivityKind.Server);
        Assert.Equal(parent, serverSpan.ParentSpanId);
        Assert.Equal(requestId, serverSpan.GetTagItem("medserve.request_id"));
        Assert.Contains(ours, s => s.OperationName == "medserve.infer" && (string?)s.GetTagItem("medserve.model") == "risk");
        Assert.Contains(ours, s => s.OperationName == "medserve.execute");
        Assert.Contains(ours, s => s.OperationName == "medserve.journal.append" && (string?)s.GetTagItem("medserve.request_id") == requestId);

        server.Services.GetRequiredService<MeterProvider>().ForceFlush();
        var duration = metrics.Where(m => m.Name == "medserve.request.duration").ToList();
        Assert.NotEmpty(duration);

        // The canary, in every span (name, tags, events) and every metric point's tags.
        foreach (var span in Snapshot(spans))
        {
            var text = span.DisplayName + string.Join(" ", span.TagObjects.Select(t => $"{t.Key}={t.Value}")) + string.Join(" ", span.Events.Select(e => e.Name + string.Join(" ", e.Tags.Select(t => t.Value))));
            Assert.DoesNotContain(PatientCanary, text);
            Assert.DoesNotContain(InputCanary, text);
        }

        foreach (var metric in metrics)
        {
            foreach (ref readonly var point in metric.GetMetricPoints())
            {
                foreach (var tag in point.Tags)
                {
                    Assert.DoesNotContain(PatientCanary, tag.Value?.ToString() ?? "");
                    Assert.DoesNotContain(InputCanary, tag.Value?.ToString() ?? "");
                }
            }
        }

        // The same latency, at the frontend, in the Prometheus text.
        var exposition = await (await client.GetAsync("/metrics")).Content.ReadAsStringAsync();
        Assert.Contains("medserve_http_request_duration_seconds_count{route=\"/v2/models/{model}/infer\",model=\"risk\",status=\"2xx\"} 1", exposition);
    }

    private static List<Activity> Snapshot(List<Activity> spans)
    {
        lock (spans)
        {
            return [.. spans];
        }
    }
}
