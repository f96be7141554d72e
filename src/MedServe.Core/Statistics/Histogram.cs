namespace MedServe.Statistics;

/// <summary>
/// A fixed-bucket histogram updated lock-free: one bucket search and two interlocked adds per
/// observation. Buckets are upper bounds (inclusive), as Prometheus counts them.
/// </summary>
public sealed class Histogram(long[] upperBounds)
{
    /// <summary>Request latency bounds in nanoseconds: 100 µs to 10 s.</summary>
    public static readonly long[] LatencyBucketsNs =
    [
        100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000,
        100_000_000, 250_000_000, 500_000_000, 1_000_000_000, 2_500_000_000, 5_000_000_000, 10_000_000_000,
    ];

    public static readonly long[] BatchSizeBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256];

    private readonly long[] _counts = new long[upperBounds.Length + 1];
    private long _sum;

    public IReadOnlyList<long> UpperBounds { get; } = upperBounds;

    public long Sum => Volatile.Read(ref _sum);

    public void Observe(long value)
    {
        var bounds = (long[])UpperBounds;
        var i = 0;
        while (i < bounds.Length && value > bounds[i])
        {
            i++;
        }

        Interlocked.Increment(ref _counts[i]);
        Interlocked.Add(ref _sum, value);
    }

    /// <summary>
    /// The q-quantile of cumulative counts over <paramref name="bounds"/>, as Prometheus'
    /// histogram_quantile answers it: the bucket holding the rank, and linear interpolation inside
    /// it (the highest finite bound for the +Inf bucket). Null with no observations.
    /// </summary>
    public static double? Quantile(IReadOnlyList<long> bounds, long[] cumulative, double q)
    {
        if (cumulative.Length == 0 || cumulative[^1] == 0)
        {
            return null;
        }

        var rank = q * cumulative[^1];
        for (var i = 0; i < cumulative.Length; i++)
        {
            if (cumulative[i] < rank)
            {
                continue;
            }

            if (i >= bounds.Count)
            {
                return bounds[^1];
            }

            var lower = i == 0 ? 0 : bounds[i - 1];
            var below = i == 0 ? 0 : cumulative[i - 1];
            var inBucket = cumulative[i] - below;
            return inBucket == 0 ? bounds[i] : lower + ((bounds[i] - lower) * (rank - below) / inBucket);
        }

        return bounds[^1];
    }

    /// <summary>Cumulative counts per bucket, the last being +Inf (the total count).</summary>
    public long[] CumulativeCounts()
    {
        var cumulative = new long[_counts.Length];
        long running = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            running += Volatile.Read(ref _counts[i]);
            cumulative[i] = running;
        }

        return cumulative;
    }
}
