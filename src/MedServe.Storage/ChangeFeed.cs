using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Npgsql;
using StackExchange.Redis;

namespace MedServe.Storage;

/// <summary>
/// How a change committed on one replica reaches the others: every write names the topics it
/// changed (<see cref="DbSession.Changed"/>); the writing replica acts on it as it writes, the others
/// hear of it through PostgreSQL's NOTIFY (sent on commit) or Redis pub/sub (published after
/// commit; see <see cref="ChangeNotifications"/>) and, should a notification be missed (a dropped
/// listener connection, Redis down), through a counter per topic that each replica polls. Handlers re-read
/// the shared state (idempotent reconciles), so a change heard twice costs only a second read;
/// runs of one topic coalesce, so a burst of changes costs at most two.
/// </summary>
public sealed class ChangeFeed(ILogger<ChangeFeed> logger) : IAsyncDisposable
{
    public const string Channel = "medserve_changes";

    /// <summary>The Redis pub/sub channel, under <see cref="RedisOptions.KeyPrefix"/>: <c>medserve:changes</c> by default.</summary>
    public const string RedisChannelName = "changes";

    /// <summary>The probe a replica sends itself on the Redis channel (never a topic).</summary>
    private const string PingTopic = "ping";

    private static readonly TimeSpan PingInterval = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan PingDeadline = TimeSpan.FromSeconds(5);

    // When this replica's unanswered probe went out (Environment.TickCount64), or 0.
    private long _pingSentAt;

    internal static readonly Migration[] Migrations =
    [
        new("CREATE TABLE IF NOT EXISTS store_changes (topic TEXT PRIMARY KEY, version BIGINT NOT NULL);"),
    ];

    private readonly ConcurrentDictionary<string, Topic> _topics = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _own = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];

    /// <summary>This process's name in notifications, so it does not re-run its own changes.</summary>
    public string Replica { get; } = Guid.NewGuid().ToString("N")[..16];

    /// <summary>Whether a committing write sends PostgreSQL's NOTIFY (false when Redis or the poll carries changes).</summary>
    internal bool NotifiesThroughPostgres => _notifications == ChangeNotifications.Postgres;

    private ChangeNotifications _notifications = ChangeNotifications.Postgres;
    private SharedRedis? _redis;

    /// <summary>Changes heard from other replicas (notifications and polls), for tests and metrics.</summary>
    public long Heard => Interlocked.Read(ref _heard);

    private long _heard;

    /// <summary>Calls <paramref name="handler"/> after every change of <paramref name="topic"/> (here or on another replica).</summary>
    public void Subscribe(string topic, Func<CancellationToken, Task> handler) =>
        _topics.GetOrAdd(topic, _ => new Topic()).Handlers.Add(handler);

    /// <summary>Listens for notifications (PostgreSQL's or Redis's) and polls the counters; nothing to do for SQLite (one process).</summary>
    /// <param name="redis">The shared Redis, needed when <paramref name="notifications"/> is <see cref="ChangeNotifications.Redis"/>.</param>
    public void Start(Database database, TimeSpan pollInterval, ChangeNotifications notifications = ChangeNotifications.Postgres, SharedRedis? redis = null)
    {
        if (database.Postgres is not { } source)
        {
            return;
        }

        _notifications = notifications;
        switch (notifications)
        {
            case ChangeNotifications.Postgres:
                _loops.Add(Task.Run(() => ListenAsync(source, _stop.Token)));
                break;
            case ChangeNotifications.Redis:
                _redis = redis ?? throw new InvalidOperationException("Store:Notifications is redis but no Redis is configured (Redis:ConnectionString)");
                _loops.Add(Task.Run(() => KeepSubscribedAsync(_redis, _stop.Token)));
                break;
        }

        _loops.Add(Task.Run(() => PollAsync(source, pollInterval, _stop.Token)));
    }

    /// <summary>Runs the topic's handlers; if they are running, once more after they finish.</summary>
    public void Raise(string topic)
    {
        if (!_topics.TryGetValue(topic, out var state))
        {
            return;
        }

        if (Interlocked.Increment(ref state.Pending) == 1)
        {
            _ = Task.Run(() => RunAsync(topic, state));
        }
    }

    private async Task RunAsync(string name, Topic topic)
    {
        do
        {
            Interlocked.Exchange(ref topic.Pending, 1);
            foreach (var handler in topic.Handlers.ToArray())
            {
                try
                {
                    await handler(_stop.Token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException || !_stop.IsCancellationRequested)
                {
                    logger.LogWarning("Re-reading '{Topic}' after a change failed: {Error}", name, e.Message);
                }
            }
        }
        while (Interlocked.Decrement(ref topic.Pending) > 0 && !_stop.IsCancellationRequested);
    }

    /// <summary>In a committing PostgreSQL transaction: bumps the topic's counter and queues its notification (sent at commit).</summary>
    /// <returns>The topic's counter after this change.</returns>
    internal static async Task<long> RecordAsync(DbSession session, string topic, ChangeFeed? feed, CancellationToken cancellationToken)
    {
        var version = await session.LongAsync(
            "INSERT INTO store_changes (topic, version) VALUES (@topic, 1) ON CONFLICT (topic) DO UPDATE SET version = store_changes.version + 1 RETURNING version;",
            cancellationToken, ("@topic", topic)).ConfigureAwait(false);
        if (feed is null || feed.NotifiesThroughPostgres)
        {
            await session.ExecuteAsync("SELECT pg_notify(@channel, @payload);", cancellationToken, ("@channel", Channel), ("@payload", $"{topic} {feed?.Replica}")).ConfigureAwait(false);
        }

        return version;
    }

    /// <summary>
    /// This process committed a change of <paramref name="topic"/> that brought its counter to
    /// <paramref name="version"/>: the poll need not report it back; with Redis, the others are told now.
    /// </summary>
    internal void Committed(string topic, long version)
    {
        _own.AddOrUpdate(topic, version, (_, before) => Math.Max(before, version));
        if (_redis is { } redis && redis.ShouldTry())
        {
            _ = PublishAsync(redis, topic);
        }
    }

    private async Task PublishAsync(SharedRedis redis, string topic)
    {
        try
        {
            await redis.Subscriber.PublishAsync(redis.Channel(RedisChannelName), $"{topic} {Replica}").ConfigureAwait(false);
            redis.Succeeded();
        }
        catch (Exception e) when (e is RedisException or RedisTimeoutException or RedisConnectionException or ObjectDisposedException)
        {
            // The others' poll of the counters delivers it instead.
            redis.Failed(e);
        }
    }

    private void OnNotified(string payload)
    {
        var parts = payload.Split(' ', 2);
        if (parts.Length != 2)
        {
            return;
        }

        if (parts[0] == PingTopic)
        {
            // This replica's own probe came back: its subscription is in force.
            if (parts[1] == Replica)
            {
                Interlocked.Exchange(ref _pingSentAt, 0);
            }

            return;
        }

        if (parts[1] != Replica)
        {
            Interlocked.Increment(ref _heard);
            Raise(parts[0]);
        }
    }

    /// <summary>
    /// Subscribes once Redis answers, then checks every <see cref="PingInterval"/> that the
    /// subscription is in force by publishing a probe to itself: one not heard back within
    /// <see cref="PingDeadline"/> means the subscription was lost (a reconnect that did not restore
    /// it), and it is made again. Meanwhile the poll of the counters delivers every change.
    /// </summary>
    private async Task KeepSubscribedAsync(SharedRedis redis, CancellationToken cancellationToken)
    {
        var channel = redis.Channel(RedisChannelName);
        var subscribed = false;
        using var timer = new PeriodicTimer(PingInterval);
        try
        {
            do
            {
                try
                {
                    var sent = Interlocked.Read(ref _pingSentAt);
                    if (subscribed && sent != 0 && Environment.TickCount64 - sent > PingDeadline.TotalMilliseconds)
                    {
                        logger.LogWarning("This replica's Redis subscription to changes at {Where} stopped delivering; subscribing again (the poll covered the gap)", redis.Where);
                        await redis.Subscriber.UnsubscribeAsync(channel).ConfigureAwait(false);
                        subscribed = false;
                    }

                    if (!subscribed)
                    {
                        await redis.Subscriber.SubscribeAsync(channel, (_, message) => OnNotified(message.ToString())).ConfigureAwait(false);
                        subscribed = true;
                        Interlocked.Exchange(ref _pingSentAt, 0);
                    }

                    // Marked before it is sent: the echo may arrive before PublishAsync returns.
                    if (Interlocked.CompareExchange(ref _pingSentAt, Environment.TickCount64, 0) == 0)
                    {
                        try
                        {
                            await redis.Subscriber.PublishAsync(channel, $"{PingTopic} {Replica}").ConfigureAwait(false);
                        }
                        catch
                        {
                            Interlocked.Exchange(ref _pingSentAt, 0);
                            throw;
                        }
                    }
                }
                catch (Exception e) when (e is RedisException or RedisTimeoutException or RedisConnectionException)
                {
                    // Redis is down or restarting: the probe waits for it, the poll covers the gap.
                    if (!subscribed)
                    {
                        logger.LogWarning("Subscribing to changes through Redis at {Where} failed ({Error}); polling covers it, trying again", redis.Where, e.Message);
                    }
                }
            }
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task ListenAsync(NpgsqlDataSource source, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                connection.Notification += (_, e) => OnNotified(e.Payload);
                await using (var listen = new NpgsqlCommand($"LISTEN {Channel};", connection))
                {
                    await listen.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                while (!cancellationToken.IsCancellationRequested)
                {
                    await connection.WaitAsync(cancellationToken).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                // The poll below covers the gap; listen again shortly.
                logger.LogWarning("Listening for changes from other replicas failed ({Error}); polling covers it, listening again in 1 s", e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task PollAsync(NpgsqlDataSource source, TimeSpan interval, CancellationToken cancellationToken)
    {
        Dictionary<string, long>? seen = null;
        using var timer = new PeriodicTimer(interval);
        try
        {
            do
            {
                try
                {
                    var now = new Dictionary<string, long>(StringComparer.Ordinal);
                    await using (var command = source.CreateCommand("SELECT topic, version FROM store_changes;"))
                    await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                    {
                        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                        {
                            now[reader.GetString(0)] = reader.GetInt64(1);
                        }
                    }

                    if (seen is not null)
                    {
                        foreach (var (topic, version) in now)
                        {
                            // A counter this process moved last is its own change, already acted on.
                            var own = _own.TryGetValue(topic, out var mine) && mine == version;
                            if ((!seen.TryGetValue(topic, out var before) || before != version) && !own)
                            {
                                Interlocked.Increment(ref _heard);
                                Raise(topic);
                            }
                        }
                    }

                    seen = now;
                }
                catch (Exception e) when (e is NpgsqlException or TimeoutException)
                {
                    logger.LogWarning("Polling for changes from other replicas failed: {Error}", e.Message);
                }
            }
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(_loops).ConfigureAwait(false);
            if (_redis is { } redis)
            {
                await redis.Subscriber.UnsubscribeAsync(redis.Channel(RedisChannelName)).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or RedisException or ObjectDisposedException)
        {
        }
    }

    private sealed class Topic
    {
        public readonly ConcurrentBag<Func<CancellationToken, Task>> Handlers = [];
        public int Pending;
    }
}
