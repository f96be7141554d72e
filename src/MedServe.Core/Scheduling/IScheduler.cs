using MedServe.Inference;
using MedServe.Repository;

namespace MedServe.Scheduling;

/// <summary>
/// Runs the requests of one model version on its instances. Enqueue hands the request over;
/// the scheduler owns it until the returned task completes. Triton's scheduler contract.
/// </summary>
public interface IScheduler : IAsyncDisposable
{
    /// <summary>Requests queued and running now.</summary>
    int PendingCount { get; }

    /// <summary>Queues a validated request; completes with its result, or fails with an <see cref="InferenceException"/>.</summary>
    ValueTask<InferenceResult> EnqueueAsync(InferenceRequest request, IReadOnlyList<TensorConfig> outputs, CancellationToken cancellationToken);

    /// <summary>Stops taking requests and waits (up to <paramref name="timeout"/>) for those queued and running; the rest fail.</summary>
    Task DrainAsync(TimeSpan timeout);
}
