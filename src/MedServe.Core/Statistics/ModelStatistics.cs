using System.Collections.Concurrent;
using MedServe.Inference;

namespace MedServe.Statistics;

/// <summary>A count and a total duration, updated lock-free.</summary>
public sealed class DurationStat
{
    private long _count;
    private long _ns;

    public long Count => Volatile.Read(ref _count);

    public long Nanoseconds => Volatile.Read(ref _ns);

    public void Add(long ns)
    {
        Interlocked.Increment(ref _count);
        Interlocked.Add(ref _ns, ns);
    }
}

/// <summary>Per batch size compute durations (Triton's batch_stats).</summary>
public sealed class BatchStat
{
    public DurationStat ComputeInput { get; } = new();

    public DurationStat ComputeInfer { get; } = new();

    public DurationStat ComputeOutput { get; } = new();
}

/// <summary>
/// Triton's per model version statistics: request outcomes, time queued and in each compute
/// phase, inferences and executions, and the time of the last inference.
/// </summary>
public sealed class ModelStatistics(TimeProvider time, bool recordHistograms = true)
{
    private readonly ConcurrentDictionary<long, BatchStat> _batches = new();
    private long _inferenceCount;
    private long _executionCount;
    private long _lastInferenceMs;
    private readonly long[] _failures = new long[4];

    public DurationStat Success { get; } = new();

    public DurationStat Fail { get; } = new();

    public DurationStat Queue { get; } = new();

    public DurationStat ComputeInput { get; } = new();

    public DurationStat ComputeInfer { get; } = new();

    public DurationStat ComputeOutput { get; } = new();

    public long InferenceCount => Volatile.Read(ref _inferenceCount);

    public long ExecutionCount => Volatile.Read(ref _executionCount);

    /// <summary>Milliseconds since the Unix epoch of the last inference; 0 before the first.</summary>
    public long LastInferenceMs => Volatile.Read(ref _lastInferenceMs);

    public IEnumerable<KeyValuePair<long, BatchStat>> Batches => _batches.OrderBy(b => b.Key);

    /// <summary>Records one execution of <paramref name="batchSize"/> inferences.</summary>
    public void RecordExecution(long batchSize, long inputNs, long inferNs, long outputNs)
    {
        Interlocked.Increment(ref _executionCount);
        Interlocked.Add(ref _inferenceCount, batchSize);
        if (recordHistograms)
        {
            BatchSize.Observe(batchSize);
        }
        ComputeInput.Add(inputNs);
        ComputeInfer.Add(inferNs);
        ComputeOutput.Add(outputNs);
        var batch = _batches.GetOrAdd(batchSize, static _ => new BatchStat());
        batch.ComputeInput.Add(inputNs);
        batch.ComputeInfer.Add(inferNs);
        batch.ComputeOutput.Add(outputNs);
    }

    /// <summary>End-to-end request durations, for latency percentiles.</summary>
    public Histogram RequestDuration { get; } = new(Histogram.LatencyBucketsNs);

    /// <summary>Rows per execution: how well batching fills batches.</summary>
    public Histogram BatchSize { get; } = new(Histogram.BatchSizeBuckets);

    /// <summary>Failures by Triton's reasons: REJECTED, CANCELED, BACKEND, OTHER.</summary>
    public long FailuresBy(FailureReason reason) => Volatile.Read(ref _failures[(int)reason]);

    public void RecordSuccess(long totalNs, long queueNs)
    {
        Success.Add(totalNs);
        Queue.Add(queueNs);
        if (recordHistograms)
        {
            RequestDuration.Observe(totalNs);
        }
        Volatile.Write(ref _lastInferenceMs, time.GetUtcNow().ToUnixTimeMilliseconds());
    }

    public void RecordFailure(long totalNs, InferenceErrorKind kind)
    {
        Fail.Add(totalNs);
        Interlocked.Increment(ref _failures[(int)ReasonOf(kind)]);
        Volatile.Write(ref _lastInferenceMs, time.GetUtcNow().ToUnixTimeMilliseconds());
    }

    private static FailureReason ReasonOf(InferenceErrorKind kind) => kind switch
    {
        InferenceErrorKind.QueueFull or InferenceErrorKind.TimedOut or InferenceErrorKind.Unavailable => FailureReason.Rejected,
        InferenceErrorKind.Cancelled => FailureReason.Canceled,
        InferenceErrorKind.Internal => FailureReason.Backend,
        _ => FailureReason.Other,
    };
}

/// <summary>Triton's failure reasons (the <c>reason</c> label of nv_inference_request_failure).</summary>
public enum FailureReason
{
    Rejected,
    Canceled,
    Backend,
    Other,
}
