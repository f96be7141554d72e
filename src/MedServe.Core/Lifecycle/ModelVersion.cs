using System.Diagnostics;
using System.Threading.Channels;
using MedServe.Backends;
using MedServe.Inference;
using MedServe.Repository;
using MedServe.Statistics;

namespace MedServe.Lifecycle;

/// <summary>
/// A loaded (or failed) version of a model: its config, its execution instances and its
/// statistics. Requests hold a lease while they run, so an unload waits for them to finish
/// before the instances are disposed.
/// </summary>
public sealed class ModelVersion
{
    private readonly IModelInstance[] _instances;
    private readonly Channel<IModelInstance> _free;
    private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _leases;
    private int _retired;

    public ModelVersion(string name, long version, ModelConfig config, IModelInstance[] instances, TimeProvider time)
    {
        Name = name;
        Version = version;
        Config = config;
        _instances = instances;
        Statistics = new ModelStatistics(time);
        _free = Channel.CreateBounded<IModelInstance>(Math.Max(instances.Length, 1));
        foreach (var instance in instances)
        {
            _free.Writer.TryWrite(instance);
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

    /// <summary>A version that failed to load: never ready, with the reason shown in the index.</summary>
    public static ModelVersion Failed(string name, long version, ModelConfig config, string reason, TimeProvider time) =>
        new(name, version, config, [], time) { Reason = reason };

    public static ModelVersion Loading(string name, long version, ModelConfig config, TimeProvider time)
    {
        var placeholder = new ModelVersion(name, version, config, [], time) { State = ModelState.Loading };
        return placeholder;
    }

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

    /// <summary>Runs one request on a free instance; the caller holds a lease.</summary>
    public async ValueTask<InferenceResult> ExecuteAsync(InferenceRequest request, IReadOnlyList<TensorConfig> outputs, CancellationToken cancellationToken)
    {
        var start = Stopwatch.GetTimestamp();
        IModelInstance? instance = null;
        try
        {
            if (!_free.Reader.TryRead(out instance))
            {
                instance = await _free.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            }

            var queueNs = ElapsedNs(start);
            var timings = default(PhaseTimings);
            var result = instance.Execute(request, outputs, ref timings);
            result.ModelVersion = Version;
            Statistics.RecordExecution(BatchSize(request), timings.InputNs, timings.InferNs, timings.OutputNs);
            Statistics.RecordSuccess(ElapsedNs(start), queueNs);
            return result;
        }
        catch
        {
            Statistics.RecordFailure(ElapsedNs(start));
            throw;
        }
        finally
        {
            if (instance is not null)
            {
                _free.Writer.TryWrite(instance);
            }
        }
    }

    /// <summary>Stops new requests, waits for running ones, then disposes the instances.</summary>
    public async Task RetireAsync(string reason)
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

        await _drained.Task.ConfigureAwait(false);
        foreach (var instance in _instances)
        {
            instance.Dispose();
        }

        Reason = reason;
        State = ModelState.Unavailable;
    }

    private long BatchSize(InferenceRequest request) =>
        Config.MaxBatchSize > 0 && request.Inputs.Count > 0 && request.Inputs[0].Shape.Length > 0 ? request.Inputs[0].Shape[0] : 1;

    internal static long ElapsedNs(long startTimestamp) =>
        (long)(Stopwatch.GetElapsedTime(startTimestamp).Ticks * (1_000_000_000.0 / TimeSpan.TicksPerSecond));
}
