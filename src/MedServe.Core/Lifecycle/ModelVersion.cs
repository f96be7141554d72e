using MedServe.Backends;
using MedServe.Inference;
using MedServe.Repository;
using MedServe.Scheduling;
using MedServe.Statistics;

namespace MedServe.Lifecycle;

/// <summary>
/// A loaded (or failed) version of a model: its config, its scheduler over its execution
/// instances, and its statistics. Requests hold a lease while they run, so an unload drains the
/// scheduler and waits for them before the instances are disposed.
/// </summary>
public sealed class ModelVersion
{
    private readonly InstancePool? _instances;
    private readonly IScheduler? _scheduler;
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TimeProvider _time;
    private int _leases;
    private int _retired;

    public ModelVersion(string name, long version, ModelConfig config, IModelInstance[] instances, TimeProvider time, bool recordHistograms = true, int defaultMaxQueueSize = 0)
    {
        Name = name;
        Version = version;
        Config = config;
        _time = time;
        Statistics = new ModelStatistics(time, recordHistograms);
        if (instances.Length > 0)
        {
            _instances = new InstancePool(instances);
            _scheduler = config.DynamicBatching is not null && config.MaxBatchSize > 0
                ? new DynamicBatcher(_instances, config, Statistics, time, version, defaultMaxQueueSize)
                : new DirectScheduler(_instances, Statistics, time, version, config.MaxBatchSize > 0, defaultMaxQueueSize);
        }

        State = instances.Length > 0 ? ModelState.Ready : ModelState.Unavailable;
    }

    public string Name { get; }

    public long Version { get; }

    public ModelConfig Config { get; }

    public ModelState State { get; private set; }

    public string? Reason { get; private set; }

    public ModelStatistics Statistics { get; }

    public bool IsReady => State == ModelState.Ready;

    /// <summary>Requests queued or running now.</summary>
    public int PendingCount => _scheduler?.PendingCount ?? 0;

    /// <summary>A version that failed to load: never ready, with the reason shown in the index.</summary>
    public static ModelVersion Failed(string name, long version, ModelConfig config, string reason, TimeProvider time) =>
        new(name, version, config, [], time) { Reason = reason };

    /// <summary>Takes a lease for one request; false once the version is retiring.</summary>
    public bool TryAcquire()
    {
        Interlocked.Increment(ref _leases);
        if (Volatile.Read(ref _retired) == 0 && State == ModelState.Ready)
        {
            return true;
        }

        Release();
        return false;
    }

    public void Release()
    {
        if (Interlocked.Decrement(ref _leases) == 0 && Volatile.Read(ref _retired) == 1)
        {
            _drained.TrySetResult();
        }
    }

    /// <summary>Hands a validated request to the scheduler; the caller holds a lease.</summary>
    public ValueTask<InferenceResult> ExecuteAsync(InferenceRequest request, IReadOnlyList<TensorConfig> outputs, CancellationToken cancellationToken) =>
        _scheduler is null
            ? ValueTask.FromException<InferenceResult>(InferenceException.Unavailable($"model '{Name}' version {Version} is not loaded"))
            : _scheduler.EnqueueAsync(request, outputs, cancellationToken);

    /// <summary>Stops new requests, lets accepted ones finish (queued ones up to <paramref name="drainTimeout"/>), then frees the instances.</summary>
    public async Task RetireAsync(string reason, TimeSpan drainTimeout)
    {
        if (Interlocked.Exchange(ref _retired, 1) == 1)
        {
            await _drained.Task.ConfigureAwait(false);
            return;
        }

        State = ModelState.Unloading;
        if (Volatile.Read(ref _leases) == 0)
        {
            _drained.TrySetResult();
        }

        // Requests that already hold a lease were accepted: let them run (up to the drain time),
        // then fail whatever is still queued and wait for what is running.
        try
        {
            await _drained.Task.WaitAsync(drainTimeout, _time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }

        if (_scheduler is not null)
        {
            await _scheduler.DrainAsync(TimeSpan.Zero).ConfigureAwait(false);
        }

        await _drained.Task.ConfigureAwait(false);
        if (_scheduler is not null)
        {
            await _scheduler.DisposeAsync().ConfigureAwait(false);
        }

        _instances?.Dispose();
        Reason = reason;
        State = ModelState.Unavailable;
    }
}
