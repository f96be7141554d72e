using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace MedServe.Diagnostics;

/// <summary>
/// MedServe's spans and instruments, on System.Diagnostics (what OpenTelemetry .NET listens to).
/// A span is only built when something listens (StartActivity returns null otherwise), so an
/// untraced server pays a null check. Attributes carry model names, versions, sizes and
/// identifiers MedServe made; never an input, an output or a patient identifier.
/// </summary>
public static class Telemetry
{
    public const string Name = "MedServe";

    public static readonly ActivitySource Source = new(Name, typeof(Telemetry).Assembly.GetName().Version?.ToString());

    public static readonly Meter Meter = new(Name, typeof(Telemetry).Assembly.GetName().Version?.ToString());

    /// <summary>Request latency at the frontend, from the first byte read to the response complete (journal wait included), in seconds.</summary>
    public static readonly Histogram<double> RequestDuration = Meter.CreateHistogram<double>("medserve.request.duration", "s",
        "End-to-end request latency at the frontend, journal wait included",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });

    public static readonly Counter<long> Inferences = Meter.CreateCounter<long>("medserve.inferences", "{inference}", "Inferences answered, by model, version and outcome");
}
