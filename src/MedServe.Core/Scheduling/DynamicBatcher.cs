using MedServe.Backends;
using MedServe.Inference;
using MedServe.Repository;
using MedServe.Statistics;

namespace MedServe.Scheduling;

/// <summary>
/// Triton's dynamic batcher for one model version. Requests wait in priority queues; one loop
/// waits for work, takes a free instance, then forms a batch: at once when max_batch_size (or the largest
/// preferred size) is reached, else when the oldest request has waited max_queue_delay. Batches
/// run on the instances in parallel. Full queues refuse at once, queued requests time out or are
/// cancelled before they cost compute, and a drain finishes what was accepted.
/// </summary>
internal sealed class DynamicBatcher : IScheduler
{
    private readonly object _gate = new();
    private readonly LinkedList<Pending>[] _levels;
    private readonly int[] _levelCounts;
    private readonly InstancePool _instances;
    private readonly ModelStatistics _statistics;
    private readonly TimeProvider _time;
    private readonly ModelConfig _config;
    private readonly DynamicBatchingConfig _batching;
    private readonly int _largestPreferred;
    private readonly TimeSpan _delay;
    private readonly long _version;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private TaskCompletionSource _wake = NewSignal();
    private TaskCompletionSource _idle = NewSignal();
    private Task _previousBatch = Task.CompletedTask;
    private readonly int _defaultMaxQueueSize;
    private int _queued;
    private int _running;
    private bool _stopping;

    public DynamicBatcher(InstancePool instances, ModelConfig config, ModelStatistics statistics, TimeProvider time, long version, int defaultMaxQueueSize = 0)
    {
        _defaultMaxQueueSize = defaultMaxQueueSize;
        _instances = instances;
        _config = config;
        _batching = config.DynamicBatching ?? new DynamicBatchingConfig();
        _statistics = statistics;
        _time = time;
        _version = version;
        var levels = (int)Math.Max(_batching.PriorityLevels, 1);
        _levels = new LinkedList<Pending>[levels];
        _levelCounts = new int[levels];
        for (var i = 0; i < levels; i++)
        {
            _levels[i] = new LinkedList<Pending>();
        }

        _largestPreferred = _batching.PreferredBatchSize.Where(p => p <= config.MaxBatchSize).DefaultIfEmpty(0).Max();
        _delay = TimeSpan.FromTicks(_batching.MaxQueueDelayMicroseconds * 10);
        _loop = Task.Run(RunAsync);
    }

    public int PendingCount => Volatile.Read(ref _queued) + Volatile.Read(ref _running);

    /// <summary>Raised (under the queue lock) each time the loop waits with nothing due, with the queued count: lets tests step a fake clock.</summary>
    internal event Action<int>? Parked;

    public async ValueTask<InferenceResult> EnqueueAsync(InferenceRequest request, IReadOnlyList<TensorConfig> outputs, CancellationToken cancellationToken)
    {
        var policy = RequestPolicy.For(request, _batching);
        var item = new Pending(this, request, outputs, policy, _time.GetTimestamp());
        IModelInstance? inline = null;
        lock (_gate)
        {
            if (_stopping)
            {
                throw InferenceException.Unavailable("the model is shutting down");
            }

            var limit = policy.MaxQueueSize > 0 ? policy.MaxQueueSize : _defaultMaxQueueSize;
            if (limit > 0 && _levelCounts[policy.Level] >= limit)
            {
                _statistics.RecordFailure(0, InferenceErrorKind.QueueFull);
                throw new InferenceException(InferenceErrorKind.QueueFull,
                    $"the queue of model '{_config.Name}' is full ({limit} requests); retry later");
            }

            // Nothing queued, no delay to wait for and an instance free: a batch of one would
            // go at once anyway, so run it here and save the hand-off to the loop.
            if (_delay == TimeSpan.Zero && _queued == 0 && _instances.TryTake(out var free))
            {
                _running++;
                inline = free;
            }
            else
            {
                item.Node = _levels[policy.Level].AddLast(item);
                _levelCounts[policy.Level]++;
                _queued++;
                Wake();
            }
        }

        if (inline is not null)
        {
            Execute(inline, [item]);
        }
        else
        {
            item.Arm(cancellationToken);
        }

        return await item.Completion.Task.ConfigureAwait(false);
    }

    public async Task DrainAsync(TimeSpan timeout)
    {
        lock (_gate)
        {
            _stopping = true;
            if (_queued == 0 && _running == 0)
            {
                _idle.TrySetResult();
            }

            Wake();
        }

        try
        {
            await _idle.Task.WaitAsync(timeout, _time).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Whatever is still queued now fails; running batches finish on their own.
        }

        List<Pending> left;
        lock (_gate)
        {
            left = _levels.SelectMany(l => l).ToList();
        }

        foreach (var item in left)
        {
            item.TryFail(InferenceException.Unavailable("the model shut down before the request ran"));
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await DrainAsync(TimeSpan.Zero).ConfigureAwait(false);
        }

        _stop.Dispose();
    }

    private async Task RunAsync()
    {
        while (await WaitForWorkAsync().ConfigureAwait(false))
        {
            IModelInstance instance;
            try
            {
                instance = await _instances.TakeAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var batch = await FormBatchAsync().ConfigureAwait(false);
            if (batch is null)
            {
                // The queue emptied (timeouts, cancellations, a stop) while we waited.
                _instances.Return(instance);
                continue;
            }

            _ = Task.Run(() => Execute(instance, batch));
        }
    }

    /// <summary>Waits until something is queued; false once stopping with nothing left.</summary>
    private async Task<bool> WaitForWorkAsync()
    {
        while (true)
        {
            Task wake;
            lock (_gate)
            {
                if (_queued > 0)
                {
                    return true;
                }

                if (_stopping || _stop.IsCancellationRequested)
                {
                    return false;
                }

                wake = _wake.Task;
            }

            try
            {
                await wake.WaitAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }
    }

    /// <summary>Waits until a batch is due and takes it out of the queues; null once stopped with nothing queued.</summary>
    private async Task<List<Pending>?> FormBatchAsync()
    {
        while (true)
        {
            Task wake;
            TimeSpan wait;
            Task waiting;
            lock (_gate)
            {
                var candidates = Candidates(out var rows);
                if (candidates.Count == 0)
                {
                    return null;
                }
                else
                {
                    var waited = _time.GetElapsedTime(candidates[0].EnqueuedAt);
                    long target = 0;
                    if (rows >= _config.MaxBatchSize)
                    {
                        target = _config.MaxBatchSize;
                    }
                    else if (_largestPreferred > 0 && rows >= _largestPreferred)
                    {
                        target = _largestPreferred;
                    }
                    else if (waited >= _delay || _stopping)
                    {
                        target = rows;
                    }

                    if (target > 0)
                    {
                        // Candidates cancelled or timed out a moment ago are skipped; if that leaves
                        // nothing, look at the queue again.
                        var batch = Take(candidates, target);
                        if (batch.Count > 0)
                        {
                            return batch;
                        }

                        continue;
                    }

                    wake = _wake.Task;
                    wait = _delay - waited;
                }

                // The timer starts under the lock, so a clock read after Parked sees it armed.
                waiting = wake.WaitAsync(wait, _time, _stop.Token);
                Parked?.Invoke(_queued);
            }

            try
            {
                await waiting.ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // The oldest request's delay is up: decide again.
            }
            catch (OperationCanceledException)
            {
                return null;
            }
        }
    }

    /// <summary>The requests the next batch would hold, in priority then arrival order, that fit max_batch_size together.</summary>
    private List<Pending> Candidates(out long rows)
    {
        var candidates = new List<Pending>();
        rows = 0;
        foreach (var level in _levels)
        {
            for (var node = level.First; node is not null; node = node.Next)
            {
                var item = node.Value;
                if (candidates.Count > 0 && !BatchAssembler.Compatible(candidates[0].Request, item.Request))
                {
                    continue;
                }

                if (rows + item.Rows > _config.MaxBatchSize)
                {
                    return candidates;
                }

                candidates.Add(item);
                rows += item.Rows;
            }
        }

        return candidates;
    }

    private List<Pending> Take(List<Pending> candidates, long target)
    {
        var batch = new List<Pending>();
        long rows = 0;
        foreach (var item in candidates)
        {
            if (batch.Count > 0 && rows + item.Rows > target)
            {
                break;
            }

            if (item.TryTake())
            {
                batch.Add(item);
                rows += item.Rows;
            }
        }

        _running += batch.Count;
        return batch;
    }

    private void Execute(IModelInstance instance, List<Pending> batch)
    {
        var start = _time.GetTimestamp();
        using var span = StartExecuteSpan(batch, start);
        var rows = new long[batch.Count];
        var asked = new IReadOnlyList<TensorConfig>[batch.Count];
        long total = 0;
        for (var i = 0; i < batch.Count; i++)
        {
            rows[i] = batch[i].Rows;
            asked[i] = batch[i].Outputs;
            total += rows[i];
        }

        InferenceResult[]? results = null;
        Exception? failure = null;
        try
        {
            var timings = default(PhaseTimings);
            if (batch.Count == 1)
            {
                results = [instance.Execute(batch[0].Request, batch[0].Outputs, ref timings)];
                results[0].ModelVersion = _version;
            }
            else
            {
                using var combined = BatchAssembler.Combine(batch.Select(b => b.Request).ToList());
                var result = instance.Execute(combined, BatchAssembler.UnionOutputs(asked, _config.Outputs), ref timings);
                result.ModelVersion = _version;
                results = BatchAssembler.Split(result, rows, asked);
            }

            _statistics.RecordExecution(total, timings.InputNs, timings.InferNs, timings.OutputNs);
        }
        catch (Exception e)
        {
            failure = e is InferenceException ? e : new InferenceException(InferenceErrorKind.Internal, $"model '{_config.Name}' failed: {e.Message}", e);
        }
        finally
        {
            _instances.Return(instance);
        }

        Complete(batch, results, failure, start);
    }

    /// <summary>
    /// The queue wait of each request (a span under the request's own, from its enqueue to this
    /// batch) and the batch's execution (under the first request's span, linked to the others').
    /// </summary>
    private System.Diagnostics.Activity? StartExecuteSpan(List<Pending> batch, long start)
    {
        if (!Diagnostics.Telemetry.Source.HasListeners())
        {
            return null;
        }

        var now = DateTimeOffset.UtcNow;
        foreach (var item in batch.Where(b => b.Parent != default))
        {
            using var queued = Diagnostics.Telemetry.Source.StartActivity("medserve.queue", System.Diagnostics.ActivityKind.Internal, item.Parent,
                startTime: now - _time.GetElapsedTime(item.EnqueuedAt, start));
            queued?.SetTag("medserve.model", _config.Name);
            queued?.SetEndTime(now.UtcDateTime);
        }

        var links = batch.Skip(1).Where(b => b.Parent != default).Select(b => new System.Diagnostics.ActivityLink(b.Parent));
        var span = Diagnostics.Telemetry.Source.StartActivity("medserve.execute", System.Diagnostics.ActivityKind.Internal, batch[0].Parent, links: links);
        span?.SetTag("medserve.model", _config.Name);
        span?.SetTag("medserve.model_version", _version);
        span?.SetTag("medserve.batch.requests", batch.Count);
        return span;
    }

    private void Complete(List<Pending> batch, InferenceResult[]? results, Exception? failure, long start)
    {
        Task previous;
        TaskCompletionSource done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            previous = _previousBatch;
            _previousBatch = done.Task;
        }

        void Finish()
        {
            for (var i = 0; i < batch.Count; i++)
            {
                var item = batch[i];
                var queueNs = ToNs(start - item.EnqueuedAt);
                if (results is not null)
                {
                    _statistics.RecordSuccess(ToNs(_time.GetTimestamp() - item.EnqueuedAt), queueNs);
                    item.Completion.TrySetResult(results[i]);
                }
                else
                {
                    _statistics.RecordFailure(ToNs(_time.GetTimestamp() - item.EnqueuedAt), ((InferenceException)failure!).Kind);
                    item.Completion.TrySetException(failure!);
                }
            }

            lock (_gate)
            {
                _running -= batch.Count;
                CheckIdle();
            }

            done.TrySetResult();
        }

        // preserve_ordering: a batch answers only after every batch formed before it has.
        if (_batching.PreserveOrdering && !previous.IsCompleted)
        {
            previous.ContinueWith(_ => Finish(), TaskScheduler.Default);
        }
        else
        {
            Finish();
        }
    }

    private void Wake()
    {
        var wake = _wake;
        _wake = NewSignal();
        wake.TrySetResult();
    }

    private void CheckIdle()
    {
        if (_stopping && _queued == 0 && _running == 0)
        {
            _idle.TrySetResult();
        }
    }

    private long ToNs(long timestampDelta) => (long)(timestampDelta * (1_000_000_000.0 / _time.TimestampFrequency));

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>A queued request. It leaves the queue once: taken into a batch, timed out, or cancelled.</summary>
    private sealed class Pending(DynamicBatcher owner, InferenceRequest request, IReadOnlyList<TensorConfig> outputs, RequestPolicy policy, long enqueuedAt)
    {
        private const int Queued = 0;
        private const int Taken = 1;
        private const int Done = 2;
        private int _state;
        private CancellationTokenRegistration _cancellation;
        private ITimer? _timeout;

        public InferenceRequest Request { get; } = request;

        public IReadOnlyList<TensorConfig> Outputs { get; } = outputs;

        public long EnqueuedAt { get; } = enqueuedAt;

        /// <summary>The request's span when it was queued: the batch's spans hang under it (the batch runs on the scheduler's thread).</summary>
        public System.Diagnostics.ActivityContext Parent { get; } = System.Diagnostics.Activity.Current?.Context ?? default;

        public long Rows { get; } = BatchAssembler.Rows(request);

        public LinkedListNode<Pending>? Node { get; set; }

        public TaskCompletionSource<InferenceResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Starts watching for cancellation and for the queue timeout.</summary>
        public void Arm(CancellationToken cancellationToken)
        {
            if (policy.TimeoutMicroseconds > 0 && policy.RejectOnTimeout)
            {
                _timeout = owner._time.CreateTimer(
                    static state => ((Pending)state!).TryFail(new InferenceException(InferenceErrorKind.TimedOut, "the request timed out in the queue")),
                    this, TimeSpan.FromTicks(policy.TimeoutMicroseconds * 10), Timeout.InfiniteTimeSpan);
            }

            if (cancellationToken.CanBeCanceled)
            {
                _cancellation = cancellationToken.Register(
                    static state => ((Pending)state!).TryFail(new InferenceException(InferenceErrorKind.Cancelled, "the request was cancelled while queued")),
                    this);
            }
        }

        /// <summary>Claims the request for a batch; false when it already left the queue. Called under the gate.</summary>
        public bool TryTake()
        {
            if (Interlocked.CompareExchange(ref _state, Taken, Queued) != Queued)
            {
                return false;
            }

            Leave();
            return true;
        }

        public void TryFail(InferenceException error)
        {
            if (Interlocked.CompareExchange(ref _state, Done, Queued) != Queued)
            {
                return;
            }

            lock (owner._gate)
            {
                Leave();
                owner.CheckIdle();
            }

            owner._statistics.RecordFailure(owner.ToNs(owner._time.GetTimestamp() - EnqueuedAt), error.Kind);
            Completion.TrySetException(error);
        }

        private void Leave()
        {
            owner._levels[policy.Level].Remove(Node!);
            owner._levelCounts[policy.Level]--;
            owner._queued--;
            _timeout?.Dispose();
            _cancellation.Dispose();
        }
    }
}
