using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace MedServe.Telemetry;

/// <summary>
/// OpenTelemetry for MedServe: ASP.NET Core's server spans (which take the trace context of an
/// incoming traceparent) with MedServe's own under them (infer, queue, execute, journal), and
/// MedServe's meter, exported over OTLP when configured. Prometheus text at /metrics stays the
/// hand-written exposition (Triton's names unchanged); the same figures reach OTLP through the meter.
/// </summary>
public static class TelemetryServices
{
    public static IServiceCollection AddMedServeTelemetry(this IServiceCollection services, TelemetryOptions options)
    {
        if (!options.Enabled && options.OtlpEndpoint is null)
        {
            return services;
        }

        var builder = services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(options.ServiceName))
            .WithTracing(tracing => tracing
                .AddSource(MedServe.Diagnostics.Telemetry.Name)
                .AddAspNetCoreInstrumentation(aspnet =>
                {
                    // The query string may name a patient (GET /v1/predictions?patient_id=...): it never becomes an attribute.
                    aspnet.EnrichWithHttpRequest = (activity, _) => activity.SetTag("url.query", null);
                    aspnet.RecordException = false;
                }))
            .WithMetrics(metrics => metrics.AddMeter(MedServe.Diagnostics.Telemetry.Name));
        if (options.OtlpEndpoint is { } endpoint)
        {
            if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
            {
                throw new InvalidOperationException("MedServe:Telemetry:OtlpEndpoint must be an absolute http or https URL");
            }

            builder.UseOtlpExporter(options.OtlpProtocol == "http/protobuf" ? OtlpExportProtocol.HttpProtobuf : OtlpExportProtocol.Grpc, url);
        }

        return services;
    }
}
