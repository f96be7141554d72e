using MedServe.Backends;
using MedServe.Inference;
using MedServe.Repository;
using MedServe.Statistics;

namespace MedServe.Scheduling;

/// <summary>
/// The plain concurrent path, for models without dynamic batching: each request waits for a
/// free instance and runs alone on the caller's thread.
/// </summary>
internal sealed class DirectScheduler(InstancePool instances, ModelStatistics statistics, TimeProvider time, long version, bool batched, int maxQueueSize = 0) : IScheduler
{
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _pending;

    public int PendingCount => Volatile.Read(ref _pending);

    public async ValueTask<InferenceResult> EnqueueAsync(InferenceRequest request, IReadOnlyList<TensorConfig> outputs, CancellationToken cancellationToken)
    {
        var pending = Interlocked.Increment(ref _pending);
        var start = time.GetTimestamp();
        if (maxQueueSize > 0 && pending - instances.Count > maxQueueSize)
        {
            // More waiting for an instance than the bound: refuse now rather than hold the request's memory.
            if (Interlocked.Decrement(ref _pending) == 0 && _stopping.IsCancellationRequested)
            {
                _drained.TrySetResult();
            }

            statistics.RecordFailure(0, InferenceErrorKind.QueueFull);
            throw new InferenceException(InferenceErrorKind.QueueFull, $"the queue of this model is full ({maxQueueSize} requests waiting); retry later");
        }

        IModelInstance? instance = null;
        try
        {
            if (_stopping.IsCancellationRequested)
            {
                throw InferenceException.Unavailable("the model is shutting down");
            }

            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
            try
            {
                instance = await instances.TakeAsync(linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                throw cancellationToken.IsCancellationRequested
                    ? new InferenceException(InferenceErrorKind.Cancelled, "the request was cancelled while queued")
                    : InferenceException.Unavailable("the model is shutting down");
            }

            var queueNs = Nanoseconds(start);
            var timings = default(PhaseTimings);
            using var span = Diagnostics.Telemetry.Source.StartActivity("medserve.execute");
            span?.SetTag("medserve.model_version", version);
            span?.SetTag("medserve.queue_us", queueNs / 1000);
            var result = instance.Execute(request, outputs, ref timings);
            result.ModelVersion = version;
            statistics.RecordExecution(batched ? BatchAssembler.Rows(request) : 1, timings.InputNs, timings.InferNs, timings.OutputNs);
            statistics.RecordSuccess(Nanoseconds(start), queueNs);
            return result;
        }
        catch (Exception e)
        {
            statistics.RecordFailure(Nanoseconds(start), (e as InferenceException)?.Kind ?? InferenceErrorKind.Internal);
            throw;
        }
        finally
        {
            if (instance is not null)
            {
                instances.Return(instance);
            }

            if (Interlocked.Decrement(ref _pending) == 0 && _stopping.IsCancellationRequested)
            {
                _drained.TrySetResult();
            }
        }
    }

    public async Task DrainAsync(TimeSpan timeout)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (Volatile.Read(ref _pending) == 0)
        {
            _drained.TrySetResult();
        }

        try
        {
            await _drained.Task.WaitAsync(timeout, time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Requests still running past the drain time finish on their own; queued ones were refused.
        }
    }

    public ValueTask DisposeAsync()
    {
        _stopping.Dispose();
        return ValueTask.CompletedTask;
    }

    private long Nanoseconds(long start) => (long)(time.GetElapsedTime(start).Ticks * 100L);
}
