using System.Diagnostics;
using MedServe.Lifecycle;
using MedServe.Statistics;

namespace MedServe.Telemetry;

/// <summary>
/// The first middleware: times each request from its arrival to its response completed (so the
/// journal wait shows, which the scheduler's figures cannot), into the Prometheus histogram and
/// the OpenTelemetry instrument alike. Labels are the route template, a model name the server
/// knows ("other" for any other), and the status class: never anything a request can vary freely.
/// </summary>
public sealed class RequestTelemetryMiddleware(RequestDelegate next, FrontendLatency latency, ModelManager models, TimeProvider time)
{
    public Task InvokeAsync(HttpContext context)
    {
        var start = time.GetTimestamp();
        context.Response.OnCompleted(static state =>
        {
            var (self, context, start) = ((RequestTelemetryMiddleware, HttpContext, long))state;
            self.Record(context, start);
            return Task.CompletedTask;
        }, (this, context, start));
        return next(context);
    }

    private void Record(HttpContext context, long start)
    {
        var elapsed = time.GetElapsedTime(start);
        var route = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? (context.GetEndpoint() is null ? "unmatched" : context.Request.Path.Value ?? "");
        var model = context.Request.RouteValues.TryGetValue("model", out var value) && value is string name ? (models.Knows(name) ? name : "other") : "";
        var status = context.Response.StatusCode switch
        {
            < 200 => "1xx",
            < 300 => "2xx",
            < 400 => "3xx",
            < 500 => "4xx",
            _ => "5xx",
        };
        latency.Observe(route, model, status, (long)(elapsed.TotalMilliseconds * 1_000_000));
        if (MedServe.Diagnostics.Telemetry.RequestDuration.Enabled)
        {
            MedServe.Diagnostics.Telemetry.RequestDuration.Record(elapsed.TotalSeconds, new TagList
            {
                { "http.route", route },
                { "http.request.method", context.Request.Method },
                { "http.response.status_code", context.Response.StatusCode },
                { "medserve.model", model },
            });
        }
    }
}

/// <summary>MedServe:Telemetry: OpenTelemetry traces and metrics, exported over OTLP when an endpoint is given.</summary>
public sealed class TelemetryOptions
{
    /// <summary>Turns the OpenTelemetry SDK on without an exporter (a test adds its own); an OTLP endpoint turns it on too.</summary>
    public bool Enabled { get; set; }

    /// <summary>The OTLP collector, e.g. http://127.0.0.1:4317 (gRPC) or http://127.0.0.1:4318 with Protocol http/protobuf.</summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary>grpc (default) or http/protobuf.</summary>
    public string OtlpProtocol { get; set; } = "grpc";

    public string ServiceName { get; set; } = "medserve";
}
