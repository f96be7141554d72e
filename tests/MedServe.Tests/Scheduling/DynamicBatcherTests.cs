using MedServe.Inference;
using MedServe.Repository;
using MedServe.Scheduling;
using MedServe.Statistics;
using MedServe.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace MedServe.Tests.Scheduling;

public sealed class DynamicBatcherTests : IAsyncDisposable
{
    private readonly FakeTimeProvider _time = new();
    private readonly SemaphoreSlim _gate = new(0);
    private DynamicBatcher? _batcher;
    private ModelStatistics? _statistics;
    private DoublingInstance[] _instances = [];

    public async ValueTask DisposeAsync()
    {
        _gate.Release(1000);
        if (_batcher is not null)
        {
            await _batcher.DisposeAsync();
        }
    }

    [Fact]
    public async Task Every_response_carries_its_own_rows_under_concurrency()
    {
        var batcher = Start(new DynamicBatchingConfig(), maxBatchSize: 8, gated: true);
        var first = Background(batcher, DoublingInstance.Request(1000, 1001));
        await _instances[0].Started.WaitAsync();

        // While the instance is busy, 30 requests of 1 to 3 rows queue up.
        var random = new Random(5);
        var sent = new List<float[]>();
        var pending = new List<ValueTask<InferenceResult>>();
        for (var i = 0; i < 30; i++)
        {
            var count = random.Next(1, 4);
            var values = Enumerable.Range(0, count * 2).Select(v => (float)(i * 10 + v)).ToArray();
            sent.Add(values);
            pending.Add(batcher.EnqueueAsync(DoublingInstance.Request(values), Outputs, default));
        }

        _gate.Release(1000);
        using (var firstResult = await first)
        {
            Assert.Equal([2000f, 2002f], DoublingInstance.Values(firstResult));
        }

        for (var i = 0; i < pending.Count; i++)
        {
            using var result = await pending[i];
            Assert.Equal(sent[i].Select(v => v * 2), DoublingInstance.Values(result));
            Assert.Equal(sent[i].Length / 2, result.Outputs[0].Shape[0]);
        }

        var rows = _instances[0].BatchRows;
        Assert.All(rows, r => Assert.InRange(r, 1, 8));
        Assert.True(rows.Count < 31, "queued requests were batched together");
        Assert.Equal(1 + sent.Sum(s => s.Length / 2), rows.Sum());
    }

    [Fact]
    public async Task A_batch_waits_for_the_queue_delay_and_no_longer()
    {
        var batcher = Start(new DynamicBatchingConfig { MaxQueueDelayMicroseconds = 100_000 }, maxBatchSize: 8);
        var parked = ParkedWith(2);
        var a = batcher.EnqueueAsync(DoublingInstance.Request(1, 2), Outputs, default);
        var b = batcher.EnqueueAsync(DoublingInstance.Request(3, 4), Outputs, default);
        await parked;

        _time.Advance(TimeSpan.FromMilliseconds(99));
        Assert.Empty(_instances[0].BatchRows);
        Assert.False(a.IsCompleted);

        _time.Advance(TimeSpan.FromMilliseconds(1));
        using var ra = await a;
        using var rb = await b;
        Assert.Equal([2L], _instances[0].BatchRows);
        Assert.Equal([6f, 8f], DoublingInstance.Values(rb));
    }

    [Fact]
    public async Task A_preferred_batch_size_goes_at_once_without_waiting_for_the_delay()
    {
        var batcher = Start(new DynamicBatchingConfig { MaxQueueDelayMicroseconds = 10_000_000, PreferredBatchSize = [4] }, maxBatchSize: 8);
        var parked = ParkedWith(3);
        var requests = Enumerable.Range(0, 3).Select(i => batcher.EnqueueAsync(DoublingInstance.Request(i, i), Outputs, default)).ToList();
        await parked;
        Assert.Empty(_instances[0].BatchRows);

        requests.Add(batcher.EnqueueAsync(DoublingInstance.Request(9, 9), Outputs, default));
        foreach (var request in requests)
        {
            (await request).Dispose();
        }

        Assert.Equal([4L], _instances[0].BatchRows);
    }

    [Fact]
    public async Task Max_batch_size_is_never_exceeded_and_full_batches_go_at_once()
    {
        var batcher = Start(new DynamicBatchingConfig { MaxQueueDelayMicroseconds = 10_000_000 }, maxBatchSize: 4);
        var requests = Enumerable.Range(0, 6).Select(i => batcher.EnqueueAsync(DoublingInstance.Request(i, i, i, i), Outputs, default)).ToList();
        for (var i = 0; i < 6; i++)
        {
            (await requests[i]).Dispose();
        }

        Assert.Equal([4L, 4L, 4L], _instances[0].BatchRows);
    }

    [Fact]
    public async Task Higher_priority_requests_run_first()
    {
        var batcher = Start(new DynamicBatchingConfig { PriorityLevels = 2, DefaultPriorityLevel = 2 }, maxBatchSize: 1, gated: true);
        var blocker = Background(batcher, DoublingInstance.Request(0, 0));
        await _instances[0].Started.WaitAsync();

        var low = batcher.EnqueueAsync(WithPriority(DoublingInstance.Request(1, 1), 2), Outputs, default);
        var normal = batcher.EnqueueAsync(DoublingInstance.Request(2, 2), Outputs, default);
        var high = batcher.EnqueueAsync(WithPriority(DoublingInstance.Request(3, 3), 1), Outputs, default);
        _gate.Release(1000);
        foreach (var request in new[] { blocker, low.AsTask(), normal.AsTask(), high.AsTask() })
        {
            (await request).Dispose();
        }

        Assert.Equal([0f, 3f, 1f, 2f], _instances[0].BatchInputs.Select(b => b[0]));
    }

    [Fact]
    public async Task A_full_queue_refuses_at_once()
    {
        var policy = new QueuePolicyConfig { MaxQueueSize = 2 };
        var batcher = Start(new DynamicBatchingConfig { DefaultQueuePolicy = policy }, maxBatchSize: 1, gated: true);
        var running = Background(batcher, DoublingInstance.Request(0, 0));
        await _instances[0].Started.WaitAsync();
        var queued = new[] { batcher.EnqueueAsync(DoublingInstance.Request(1, 1), Outputs, default), batcher.EnqueueAsync(DoublingInstance.Request(2, 2), Outputs, default) };

        var error = await Assert.ThrowsAsync<InferenceException>(async () => await batcher.EnqueueAsync(DoublingInstance.Request(3, 3), Outputs, default));

        Assert.Equal(InferenceErrorKind.QueueFull, error.Kind);
        Assert.Equal(3, batcher.PendingCount);
        _gate.Release(1000);
        (await running).Dispose();
        foreach (var request in queued)
        {
            (await request).Dispose();
        }
    }

    [Fact]
    public async Task A_config_without_max_queue_size_is_bounded_by_the_server_default()
    {
        var batcher = Start(new DynamicBatchingConfig(), maxBatchSize: 1, gated: true, defaultMaxQueueSize: 2);
        var running = Background(batcher, DoublingInstance.Request(0, 0));
        await _instances[0].Started.WaitAsync();
        var queued = new[] { batcher.EnqueueAsync(DoublingInstance.Request(1, 1), Outputs, default), batcher.EnqueueAsync(DoublingInstance.Request(2, 2), Outputs, default) };

        var error = await Assert.ThrowsAsync<InferenceException>(async () => await batcher.EnqueueAsync(DoublingInstance.Request(3, 3), Outputs, default));

        Assert.Equal(InferenceErrorKind.QueueFull, error.Kind);
        Assert.Contains("(2 requests)", error.Message);
        _gate.Release(1000);
        (await running).Dispose();
        foreach (var request in queued)
        {
            (await request).Dispose();
        }
    }

    [Fact]
    public async Task The_direct_path_is_bounded_too()
    {
        _instances = [new DoublingInstance(_gate)];
        _statistics = new ModelStatistics(_time);
        var direct = new DirectScheduler(new InstancePool(_instances), _statistics, _time, 1, batched: true, maxQueueSize: 1);
        var running = Task.Run(async () => await direct.EnqueueAsync(DoublingInstance.Request(0, 0), Outputs, default));
        await _instances[0].Started.WaitAsync();
        var waiting = direct.EnqueueAsync(DoublingInstance.Request(1, 1), Outputs, default);

        var error = await Assert.ThrowsAsync<InferenceException>(async () => await direct.EnqueueAsync(DoublingInstance.Request(2, 2), Outputs, default));

        Assert.Equal(InferenceErrorKind.QueueFull, error.Kind);
        _gate.Release(1000);
        (await running).Dispose();
        (await waiting).Dispose();
    }

    [Fact]
    public async Task A_request_that_waits_past_its_timeout_fails_and_never_runs()
    {
        var policy = new QueuePolicyConfig { DefaultTimeoutMicroseconds = 1_000 };
        var batcher = Start(new DynamicBatchingConfig { DefaultQueuePolicy = policy }, maxBatchSize: 1, gated: true);
        var running = Background(batcher, DoublingInstance.Request(0, 0));
        await _instances[0].Started.WaitAsync();
        var late = batcher.EnqueueAsync(DoublingInstance.Request(7, 7), Outputs, default);

        _time.Advance(TimeSpan.FromMilliseconds(1));

        var error = await Assert.ThrowsAsync<InferenceException>(async () => await late);
        Assert.Equal(InferenceErrorKind.TimedOut, error.Kind);
        _gate.Release(1000);
        (await running).Dispose();
        Assert.DoesNotContain(_instances[0].BatchInputs, b => b[0] == 7f);
        Assert.Equal(1, _statistics!.Fail.Count);
    }

    [Fact]
    public async Task A_request_may_shorten_its_timeout_when_the_policy_allows()
    {
        var policy = new QueuePolicyConfig { DefaultTimeoutMicroseconds = 10_000_000, AllowTimeoutOverride = true };
        var batcher = Start(new DynamicBatchingConfig { DefaultQueuePolicy = policy }, maxBatchSize: 1, gated: true);
        var running = Background(batcher, DoublingInstance.Request(0, 0));
        await _instances[0].Started.WaitAsync();
        var request = DoublingInstance.Request(7, 7);
        request.Parameters = new() { ["timeout"] = InferenceParameter.Of(500L) };
        var late = batcher.EnqueueAsync(request, Outputs, default);

        _time.Advance(TimeSpan.FromMicroseconds(500));

        Assert.Equal(InferenceErrorKind.TimedOut, (await Assert.ThrowsAsync<InferenceException>(async () => await late)).Kind);
        _gate.Release(1000);
        (await running).Dispose();
    }

    [Fact]
    public async Task A_cancelled_request_leaves_the_queue_before_it_costs_compute()
    {
        var batcher = Start(new DynamicBatchingConfig(), maxBatchSize: 1, gated: true);
        var running = Background(batcher, DoublingInstance.Request(0, 0));
        await _instances[0].Started.WaitAsync();
        using var cancel = new CancellationTokenSource();
        var doomed = batcher.EnqueueAsync(DoublingInstance.Request(5, 5), Outputs, cancel.Token);

        await cancel.CancelAsync();

        Assert.Equal(InferenceErrorKind.Cancelled, (await Assert.ThrowsAsync<InferenceException>(async () => await doomed)).Kind);
        Assert.Equal(1, batcher.PendingCount);
        _gate.Release(1000);
        (await running).Dispose();
        Assert.Equal([0f], _instances[0].BatchInputs.Select(b => b[0]));
    }

    [Fact]
    public async Task Drain_finishes_what_was_accepted_and_refuses_what_comes_after()
    {
        var batcher = Start(new DynamicBatchingConfig(), maxBatchSize: 1, gated: true);
        var accepted = new List<Task<InferenceResult>> { Background(batcher, DoublingInstance.Request(0, 0)) };
        await _instances[0].Started.WaitAsync();
        accepted.AddRange(Enumerable.Range(1, 2).Select(i => batcher.EnqueueAsync(DoublingInstance.Request(i, i), Outputs, default).AsTask()));

        var drain = batcher.DrainAsync(TimeSpan.FromMinutes(1));
        var refused = await Assert.ThrowsAsync<InferenceException>(async () => await batcher.EnqueueAsync(DoublingInstance.Request(9, 9), Outputs, default));
        _gate.Release(1000);
        await drain;

        Assert.Equal(InferenceErrorKind.Unavailable, refused.Kind);
        foreach (var request in accepted)
        {
            (await request).Dispose();
        }

        Assert.Equal(3, _instances[0].BatchRows.Count);
    }

    [Fact]
    public async Task Two_instances_run_batches_in_parallel()
    {
        var batcher = Start(new DynamicBatchingConfig(), maxBatchSize: 1, gated: true, instances: 2);
        var a = Background(batcher, DoublingInstance.Request(1, 1));
        var b = Background(batcher, DoublingInstance.Request(2, 2));

        // Both start before either is released: two batches in flight at once.
        await _instances[0].Started.WaitAsync();
        await _instances[1].Started.WaitAsync();
        _gate.Release(1000);
        (await a).Dispose();
        (await b).Dispose();
    }

    [Fact]
    public async Task Statistics_count_one_execution_per_batch_and_one_success_per_request()
    {
        var batcher = Start(new DynamicBatchingConfig(), maxBatchSize: 8, gated: true);
        var first = Background(batcher, DoublingInstance.Request(0, 0));
        await _instances[0].Started.WaitAsync();
        var rest = Enumerable.Range(1, 4).Select(i => batcher.EnqueueAsync(DoublingInstance.Request(i, i), Outputs, default)).ToList();
        _gate.Release(1000);
        (await first).Dispose();
        foreach (var request in rest)
        {
            (await request).Dispose();
        }

        Assert.Equal(5, _statistics!.Success.Count);
        Assert.Equal(5, _statistics.InferenceCount);
        Assert.Equal(_instances[0].BatchRows.Count, _statistics.ExecutionCount);
        Assert.Equal(2, _statistics.ExecutionCount);
    }

    private static readonly IReadOnlyList<TensorConfig> Outputs = DoublingInstance.Config(new DynamicBatchingConfig()).Outputs;

    /// <summary>Enqueues from another thread: with an instance free, the batcher runs the request inline on the caller.</summary>
    private static Task<InferenceResult> Background(DynamicBatcher batcher, InferenceRequest request) =>
        Task.Run(() => batcher.EnqueueAsync(request, Outputs, default).AsTask());

    [Fact]
    public async Task With_no_delay_and_a_free_instance_a_lone_request_runs_on_the_callers_thread()
    {
        var batcher = Start(new DynamicBatchingConfig(), maxBatchSize: 8);
        var caller = Environment.CurrentManagedThreadId;
        var request = batcher.EnqueueAsync(DoublingInstance.Request(1, 2), Outputs, default);

        Assert.True(request.IsCompleted);
        using var result = await request;
        Assert.Equal([2f, 4f], DoublingInstance.Values(result));
        Assert.Equal(caller, _instances[0].Threads.Single());
    }

    private DynamicBatcher Start(DynamicBatchingConfig batching, int maxBatchSize, bool gated = false, int instances = 1, int defaultMaxQueueSize = 0)
    {
        _instances = Enumerable.Range(0, instances).Select(_ => new DoublingInstance(gated ? _gate : null)).ToArray();
        _statistics = new ModelStatistics(_time);
        _batcher = new DynamicBatcher(new InstancePool(_instances), DoublingInstance.Config(batching, maxBatchSize), _statistics, _time, 1, defaultMaxQueueSize);
        return _batcher;
    }

    private Task ParkedWith(int queued)
    {
        var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _batcher!.Parked += count =>
        {
            if (count == queued)
            {
                signal.TrySetResult();
            }
        };
        return signal.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }

    private static InferenceRequest WithPriority(InferenceRequest request, long priority)
    {
        request.Parameters = new() { ["priority"] = InferenceParameter.Of(priority) };
        return request;
    }
}
