using System.Collections.Concurrent;

namespace MedServe.Statistics;

/// <summary>
/// End-to-end request latency as the frontend sees it (journal wait included), per route
/// template, model and status class: the label values are a bounded set the server defines
/// (an unknown model is "other"), so no request can grow the series without bound.
/// </summary>
public sealed class FrontendLatency
{
    private readonly ConcurrentDictionary<(string Route, string Model, string Status), Histogram> _histograms = new();

    public void Observe(string route, string model, string status, long nanoseconds) =>
        _histograms.GetOrAdd((route, model, status), static _ => new Histogram(Histogram.LatencyBucketsNs)).Observe(nanoseconds);

    public IEnumerable<KeyValuePair<(string Route, string Model, string Status), Histogram>> Series => _histograms.OrderBy(h => h.Key);
}
