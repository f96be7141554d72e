using System.Diagnostics;
using MedServe.Storage;
using MedServe.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace MedServe.Tests.Storage;

/// <summary>
/// The change feed and the leader election on a real PostgreSQL, two "replicas" in one process
/// (each its own connection pool, as separate processes would have).
/// </summary>
public sealed class CoordinationTests : IAsyncDisposable
{
    private readonly List<IAsyncDisposable> _owned = [];

    [PostgresFact]
    public async Task A_change_written_on_one_replica_reaches_the_other_by_notification_and_not_its_writer()
    {
        var connection = await TestPostgres.CreateDatabaseAsync();
        var (writer, writerFeed) = await ReplicaAsync(connection);
        var (reader, readerFeed) = await ReplicaAsync(connection);
        var heardByReader = new SemaphoreSlim(0);
        var heardByWriter = 0;
        readerFeed.Subscribe("registry", _ => Task.FromResult(heardByReader.Release()));
        writerFeed.Subscribe("registry", _ => Task.FromResult(Interlocked.Increment(ref heardByWriter)));

        // Polling every minute: what arrives within 2 s came by NOTIFY.
        readerFeed.Start(reader, TimeSpan.FromMinutes(1));
        writerFeed.Start(writer, TimeSpan.FromMinutes(1));
        await Task.Delay(300); // LISTEN issued
        var clock = Stopwatch.StartNew();
        await ChangeAsync(writer, "registry");

        Assert.True(await heardByReader.WaitAsync(TimeSpan.FromSeconds(2)), "the other replica did not hear the change within 2 s");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2));
        await Task.Delay(200);
        Assert.Equal(0, Volatile.Read(ref heardByWriter));
        Assert.Equal(1, readerFeed.Heard);
    }

    [RedisFact(WithPostgres = true)]
    public async Task With_redis_notifications_a_change_reaches_the_other_replica_through_pub_sub_and_none_through_postgres()
    {
        var connection = await TestPostgres.CreateDatabaseAsync();
        using var server = await TestRedis.StartAsync();
        var (writer, writerFeed) = await ReplicaAsync(connection);
        var (reader, readerFeed) = await ReplicaAsync(connection);
        var heardByReader = new SemaphoreSlim(0);
        var heardByWriter = 0;
        readerFeed.Subscribe("registry", _ => Task.FromResult(heardByReader.Release()));
        writerFeed.Subscribe("registry", _ => Task.FromResult(Interlocked.Increment(ref heardByWriter)));

        // A bystander listening on PostgreSQL's channel: with Redis carrying changes, nothing is sent there.
        await using var bystander = new Npgsql.NpgsqlConnection(connection);
        await bystander.OpenAsync();
        var notified = 0;
        bystander.Notification += (_, _) => Interlocked.Increment(ref notified);
        await using (var listen = new Npgsql.NpgsqlCommand($"LISTEN {ChangeFeed.Channel};", bystander))
        {
            await listen.ExecuteNonQueryAsync();
        }

        // Polling every minute: what arrives within 2 s came through Redis.
        var options = new RedisOptions { ConnectionString = server.ConnectionString, KeyPrefix = "coord-test:" };
        await using var writerRedis = SharedRedis.Connect(options, NullLogger<SharedRedis>.Instance);
        await using var readerRedis = SharedRedis.Connect(options, NullLogger<SharedRedis>.Instance);
        readerFeed.Start(reader, TimeSpan.FromMinutes(1), ChangeNotifications.Redis, readerRedis);
        writerFeed.Start(writer, TimeSpan.FromMinutes(1), ChangeNotifications.Redis, writerRedis);
        await WaitForSubscribersAsync(readerRedis, 2, TimeSpan.FromSeconds(5));
        var clock = Stopwatch.StartNew();
        await ChangeAsync(writer, "registry");

        Assert.True(await heardByReader.WaitAsync(TimeSpan.FromSeconds(2)), "the other replica did not hear the change through Redis within 2 s");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2));
        await bystander.WaitAsync(TimeSpan.FromMilliseconds(300));
        Assert.Equal(0, Volatile.Read(ref notified));
        Assert.Equal(0, Volatile.Read(ref heardByWriter));
        Assert.Equal(1, readerFeed.Heard);

        // Redis gone: a write still commits and bumps its counter, which the others' poll reads (tested above).
        server.Kill();
        await ChangeAsync(writer, "registry");
        var counter = await reader.ScalarAsync("SELECT version FROM store_changes WHERE topic = 'registry';", CancellationToken.None);
        Assert.Equal(2L, Convert.ToInt64(counter, System.Globalization.CultureInfo.InvariantCulture));

        // Redis back: both replicas reconnect, the subscription is restored, and changes flow through it again.
        await server.RestartAsync();
        // StackExchange.Redis restores subscriptions on reconnect (0.6 s here); when it does not, each
        // replica's probe of its own subscription (every 2 s, 5 s to answer) subscribes again.
        await WaitForSubscribersAsync(readerRedis, 2, TimeSpan.FromSeconds(20));
        var drained = 0;
        while (heardByReader.Wait(0))
        {
            drained++;
        }

        Assert.Equal(0, drained); // the change made while Redis was down waits for the (minute-long) poll
        await ChangeAsync(writer, "registry");
        Assert.True(await heardByReader.WaitAsync(TimeSpan.FromSeconds(2)), "after Redis came back, the change did not arrive through it within 2 s");

        // The reader's subscription lost behind the feed's back (as a reconnect that fails to restore it
        // would): its probe goes unanswered, and it subscribes again within seconds.
        await readerRedis.Subscriber.UnsubscribeAllAsync();
        await WaitForSubscribersAsync(readerRedis, 1, TimeSpan.FromSeconds(5));
        var healed = Stopwatch.StartNew();
        await WaitForSubscribersAsync(readerRedis, 2, TimeSpan.FromSeconds(15));
        Assert.True(healed.Elapsed > TimeSpan.FromSeconds(1), "the subscription came back at once: it was not lost");
        await ChangeAsync(writer, "registry");
        Assert.True(await heardByReader.WaitAsync(TimeSpan.FromSeconds(2)), "after the subscription was made again, the change did not arrive through it within 2 s");
    }

    [PostgresFact]
    public async Task Without_notifications_the_poll_of_the_change_counters_still_delivers_each_change()
    {
        var connection = await TestPostgres.CreateDatabaseAsync();
        var (writer, _) = await ReplicaAsync(connection);
        var (reader, readerFeed) = await ReplicaAsync(connection);
        var heard = new SemaphoreSlim(0);
        readerFeed.Subscribe("keys", _ => Task.FromResult(heard.Release()));
        readerFeed.Start(reader, TimeSpan.FromMilliseconds(200), ChangeNotifications.Poll);
        await Task.Delay(400); // the first poll sets the baseline

        for (var i = 0; i < 2; i++)
        {
            await ChangeAsync(writer, "keys");
            Assert.True(await heard.WaitAsync(TimeSpan.FromSeconds(2)), $"change {i + 1} was not polled within 2 s");
        }
    }

    [PostgresFact]
    public async Task Exactly_one_of_two_replicas_leads_and_the_other_takes_over_when_it_goes()
    {
        var connection = await TestPostgres.CreateDatabaseAsync();
        var (first, _) = await ReplicaAsync(connection);
        var (second, _) = await ReplicaAsync(connection);
        var one = new LeaderElection(NullLogger<LeaderElection>.Instance);
        var two = new LeaderElection(NullLogger<LeaderElection>.Instance);
        _owned.Add(two);
        foreach (var election in new[] { one, two })
        {
            election.Register("rollout");
            election.Register("alerts");
        }

        var interval = TimeSpan.FromMilliseconds(200);
        one.Start(first, interval);
        await WaitAsync(() => one.Leads("rollout") && one.Leads("alerts"), TimeSpan.FromSeconds(5));
        two.Start(second, interval);
        await Task.Delay(interval * 4);
        Assert.False(two.Leads("rollout"));
        Assert.False(two.Leads("alerts"));

        // The leader stops (its session closes): the other leads both loops at its next try.
        var clock = Stopwatch.StartNew();
        await one.DisposeAsync();
        Assert.False(one.Leads("rollout"));
        await WaitAsync(() => two.Leads("rollout") && two.Leads("alerts"), TimeSpan.FromSeconds(5));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
    }

    [Fact]
    public void On_sqlite_the_one_process_leads_every_loop_and_hears_nothing()
    {
        var root = Path.Combine(Path.GetTempPath(), "medserve-coord-" + Guid.NewGuid().ToString("N"));
        try
        {
            var database = Database.OpenSqlite(Path.Combine(root, "registry.db"));
            var election = new LeaderElection(NullLogger<LeaderElection>.Instance);
            election.Register("rollout");
            election.Start(database, TimeSpan.FromSeconds(1));

            Assert.True(election.Leads("rollout"));
            Assert.Equal(StoreProvider.Sqlite, database.Provider);
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void Options_that_cannot_work_are_refused_naming_the_setting()
    {
        Assert.Contains("Store:ConnectionString is empty", new StoreOptions { Provider = StoreProvider.Postgres }.Problem());
        Assert.Contains("must be positive", new StoreOptions { ChangePollInterval = TimeSpan.Zero }.Problem());
        Assert.Null(new StoreOptions().Problem());
    }

    [Fact]
    public async Task A_bad_connection_string_is_refused_without_echoing_it()
    {
        var error = await Assert.ThrowsAsync<StoreException>(() => Database.OpenPostgresAsync("Host=127.0.0.1;Password=hunter2;Bogus Keyword=1", TimeProvider.System));

        Assert.Contains("not a valid PostgreSQL connection string", error.Message);
        Assert.DoesNotContain("hunter2", error.Message);
    }

    [Fact]
    public async Task An_unreachable_database_is_refused_naming_where_and_not_the_password()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();

        var error = await Assert.ThrowsAsync<StoreException>(() => Database.OpenPostgresAsync($"Host=127.0.0.1;Port={port};Database=medserve;Username=u;Password=hunter2;Timeout=3", TimeProvider.System));

        Assert.Contains($"PostgreSQL at 127.0.0.1:{port} (database 'medserve') cannot be used", error.Message);
        Assert.DoesNotContain("hunter2", error.Message);
    }

    private async Task<(Database Database, ChangeFeed Feed)> ReplicaAsync(string connection)
    {
        var database = await Database.OpenPostgresAsync(connection, TimeProvider.System);
        var feed = new ChangeFeed(NullLogger<ChangeFeed>.Instance);
        database.Changes = feed;
        _owned.Add(feed);
        _owned.Add(database);
        return (database, feed);
    }

    /// <summary>Until Redis itself counts <paramref name="count"/> subscribers of the change channel (PUBSUB NUMSUB): a SUBSCRIBE sent is not yet one in force.</summary>
    private static async Task WaitForSubscribersAsync(SharedRedis redis, long count, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var seen = "nothing yet";
            try
            {
                var answer = (StackExchange.Redis.RedisResult[])(await redis.Database.ExecuteAsync("PUBSUB", "NUMSUB", redis.Options.KeyPrefix + ChangeFeed.RedisChannelName))!;
                if ((long)answer[1] == count)
                {
                    return;
                }

                seen = $"{(long)answer[1]} subscribers";
            }
            catch (Exception e) when (e is StackExchange.Redis.RedisConnectionException or StackExchange.Redis.RedisTimeoutException)
            {
                // Still reconnecting.
                seen = e.GetType().Name + ": " + e.Message;
            }

            Assert.True(clock.Elapsed < limit, $"Redis did not count {count} subscribers within {limit} (last: {seen})");
            await Task.Delay(20);
        }
    }

    /// <summary>A committed write that changed <paramref name="topic"/> and nothing else.</summary>
    private static Task ChangeAsync(Database database, string topic) =>
        database.WriteAsync(session =>
        {
            session.Changed(topic);
            return Task.FromResult(0);
        });

    private static async Task WaitAsync(Func<bool> condition, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < limit, $"not within {limit}");
            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var owned in Enumerable.Reverse(_owned))
        {
            await owned.DisposeAsync();
        }
    }
}
