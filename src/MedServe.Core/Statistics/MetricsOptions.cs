namespace MedServe.Statistics;

/// <summary>The "MedServe:Metrics" section.</summary>
public sealed class MetricsOptions
{
    /// <summary>Record the latency and batch-size histograms (Triton's counters cost nothing extra: they are read at scrape time).</summary>
    public bool Histograms { get; set; } = true;
}
