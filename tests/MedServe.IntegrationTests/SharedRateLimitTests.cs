using System.Diagnostics;
using System.Net;
using System.Threading.RateLimiting;
using MedServe.IntegrationTests.Support;
using MedServe.Security;
using MedServe.Storage;
using MedServe.Tests.Support;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Time.Testing;

namespace MedServe.IntegrationTests;

/// <summary>
/// Per-key rate limits shared through a real Redis (started by each test on a free port): two
/// replicas grant a key its rate once between them, not once each; while Redis is down each
/// replica counts alone, warned once, and shares again when Redis is back.
/// </summary>
public sealed class SharedRateLimitTests
{
    private const string RiskBody = """{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}]}""";

    [RedisFact]
    public async Task Two_replicas_share_a_keys_bucket_and_count_alone_while_redis_is_down()
    {
        using var server = await TestRedis.StartAsync();
        var options = new RedisOptions { ConnectionString = server.ConnectionString };
        var logA = new FakeLogger<SharedRedis>();
        await using var a = SharedRedis.Connect(options, logA);
        await using var b = SharedRedis.Connect(options, new FakeLogger<SharedRedis>());
        Assert.True(a.Up && b.Up);

        // One key, rate 5, asked 20 times in turn on the two replicas: 5 granted between them (and
        // what refilled meanwhile); counted apart they would grant 10.
        using var onA = new SharedTokenBucket(a, "ward", 5, TimeProvider.System);
        using var onB = new SharedTokenBucket(b, "ward", 5, TimeProvider.System);
        var clock = Stopwatch.StartNew();
        var leases = new List<RateLimitLease>();
        for (var i = 0; i < 20; i++)
        {
            leases.Add(await (i % 2 == 0 ? onA : onB).AcquireAsync());
        }

        var granted = leases.Count(l => l.IsAcquired);
        Assert.InRange(granted, 5, 5 + (int)Math.Ceiling(clock.Elapsed.TotalSeconds * 5));
        Assert.True(leases.First(l => !l.IsAcquired).TryGetMetadata(MetadataName.RetryAfter, out var retryAfter));
        Assert.InRange(retryAfter, TimeSpan.FromTicks(1), TimeSpan.FromSeconds(1));
        Assert.Equal(0, a.LocalDecisions + b.LocalDecisions);

        // Another key has its own bucket; the synchronous attempt never blocks on the network.
        using var lab = new SharedTokenBucket(a, "lab", 5, TimeProvider.System);
        Assert.False(lab.AttemptAcquire().IsAcquired);
        Assert.True((await lab.AcquireAsync()).IsAcquired);

        // A key's call to Redis takes what this replica was asked for in the last 100 ms (at most a
        // fiftieth of the rate), spent here without Redis: 30 requests in turn cost 6 calls
        // (1, 2, 4, 8, 10, 10 tokens: 35 taken, 5 held). Held tokens last 100 ms, then are lost,
        // never granted twice.
        var fakeClock = new FakeTimeProvider();
        using var fast = new SharedTokenBucket(a, "fast", 500, fakeClock);
        var fastClock = Stopwatch.StartNew();
        for (var i = 0; i < 30; i++)
        {
            Assert.True((await fast.AcquireAsync()).IsAcquired);
        }

        Assert.Equal(6, fast.RedisCalls);
        var left = (double)await a.Database.HashGetAsync("medserve:rate:fast", "tokens");
        Assert.InRange(left, 465, 465 + (fastClock.Elapsed.TotalSeconds * 500) + 1);
        Assert.True(fast.AttemptAcquire().IsAcquired);
        fakeClock.Advance(TimeSpan.FromMilliseconds(150));
        Assert.False(fast.AttemptAcquire().IsAcquired);

        // A burst on a fast key makes one call at a time, the others waiting on it, so 64 requests
        // at once cannot each take a chunk and drain the bucket (rate 1,000,000: all are granted).
        using var burst = new SharedTokenBucket(a, "burst", 1_000_000, TimeProvider.System);
        var start = new TaskCompletionSource();
        var asked = Enumerable.Range(0, 64).Select(_ => Task.Run(async () =>
        {
            await start.Task;
            return await burst.AcquireAsync();
        })).ToList();
        start.SetResult();
        var answered = await Task.WhenAll(asked);
        Assert.All(answered, l => Assert.True(l.IsAcquired));
        Assert.InRange(burst.RedisCalls, 1, 16);

        // Redis dies: every request is still answered, by the replica's own bucket (rate 3, so 3
        // or, past a refill, 6 of 12), and the outage is warned of once.
        server.Kill();
        using var icu = new SharedTokenBucket(a, "icu", 3, TimeProvider.System);
        var alone = new List<RateLimitLease>();
        for (var i = 0; i < 12; i++)
        {
            alone.Add(await icu.AcquireAsync());
        }

        Assert.InRange(alone.Count(l => l.IsAcquired), 3, 6);
        Assert.True(alone.First(l => !l.IsAcquired).TryGetMetadata(MetadataName.RetryAfter, out TimeSpan _));
        Assert.False(a.Up);
        Assert.Equal(12, a.LocalDecisions);
        var warning = Assert.Single(logA.Collector.GetSnapshot(), r => r.Level == LogLevel.Warning);
        Assert.Contains($"Redis at 127.0.0.1:{server.Port} cannot be used", warning.Message);
        Assert.Contains("counted by each replica alone", warning.Message);

        // Back: the probe finds it and the buckets are shared again.
        await server.RestartAsync();
        var back = Stopwatch.StartNew();
        while (!a.Up && back.Elapsed < TimeSpan.FromSeconds(15))
        {
            (await icu.AcquireAsync()).Dispose();
            await Task.Delay(100);
        }

        Assert.True(a.Up, "Redis was not used again within 15 s of its restart");
        Assert.Contains(logA.Collector.GetSnapshot(), r => r.Level == LogLevel.Warning && r.Message.Contains("reachable again", StringComparison.Ordinal));
        var before = a.LocalDecisions;
        (await icu.AcquireAsync()).Dispose();
        Assert.Equal(before, a.LocalDecisions);
    }

    [RedisFact(WithPostgres = true)]
    public async Task Two_servers_on_one_postgres_and_redis_grant_a_key_its_rate_once_between_them()
    {
        using var redis = await TestRedis.StartAsync();
        var database = await TestPostgres.CreateDatabaseAsync();
        var settings = new Dictionary<string, string?>
        {
            ["MedServe:Store:Provider"] = "postgres",
            ["MedServe:Store:ConnectionString"] = database,
            ["MedServe:Redis:ConnectionString"] = redis.ConnectionString,
            ["MedServe:Encryption:MasterKeys"] = "k1:" + Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)),
        };
        await using var a = await RunningServer.StartAsync(settings);

        // B joins the same database: the admin key A made is good there (B makes none of its own).
        var rootB = Path.Combine(Path.GetTempPath(), "medserve-own-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(rootB);
        File.Copy(Path.Combine(a.Root, "admin.key"), Path.Combine(rootB, "admin.key"));
        try
        {
            await using var b = await RunningServer.StartAsync(settings, root: rootB);
            using var admin = a.Client(a.AdminKey);
            using var created = await admin.PostAsync("/v1/keys", new StringContent("""{"name":"ward","scopes":["infer"],"requests_per_second":3}"""));
            var key = (await ServerFixture.JsonAsync(created)).GetProperty("key").GetString();
            using var viaA = a.Client(key);
            using var viaB = b.Client(key);
            var clock = Stopwatch.StartNew();
            var statuses = new List<HttpStatusCode>();
            for (var i = 0; i < 12; i++)
            {
                using var response = await (i % 2 == 0 ? viaA : viaB).PostAsync("/v2/models/risk/infer", new StringContent(RiskBody));
                statuses.Add(response.StatusCode);
            }

            // Counted apart the two would grant 6 and refill twice as fast.
            var answered = statuses.Count(s => s == HttpStatusCode.OK);
            Assert.InRange(answered, 3, 3 + (int)Math.Ceiling(clock.Elapsed.TotalSeconds * 3));
            Assert.Equal(12, answered + statuses.Count(s => s == HttpStatusCode.TooManyRequests));
            Assert.Contains(HttpStatusCode.OK, statuses.Where((_, i) => i % 2 == 1));
        }
        finally
        {
            Directory.Delete(rootB, recursive: true);
        }
    }

    [Fact]
    public async Task A_server_whose_redis_is_unreachable_starts_limits_locally_and_says_where_but_not_the_password()
    {
        var closed = ServerProcess.FreePort();
        var log = new FakeLogCollector();
        await using var server = await RunningServer.StartAsync(
            new Dictionary<string, string?> { ["MedServe:Redis:ConnectionString"] = $"127.0.0.1:{closed},password=hunter2-secret,connectTimeout=300" },
            builder => builder.Logging.AddProvider(new FakeLoggerProvider(log)));
        using var admin = server.Client(server.AdminKey);
        using var created = await admin.PostAsync("/v1/keys", new StringContent("""{"name":"slow","scopes":["infer"],"requests_per_second":2}"""));
        var key = (await ServerFixture.JsonAsync(created)).GetProperty("key").GetString();
        using var client = server.Client(key);
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 8; i++)
        {
            using var response = await client.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody));
            statuses.Add(response.StatusCode);
        }

        Assert.True(statuses.Contains(HttpStatusCode.TooManyRequests), string.Join(",", statuses));
        Assert.InRange(statuses.Count(s => s == HttpStatusCode.OK), 2, 6);
        var warnings = log.GetSnapshot().Where(r => r.Category == typeof(SharedRedis).FullName).ToList();
        var warning = Assert.Single(warnings);
        Assert.Contains($"127.0.0.1:{closed}", warning.Message);
        Assert.DoesNotContain("hunter2", string.Join("\n", log.GetSnapshot().Select(r => r.Message + r.Exception)));

        using var metrics = await admin.GetAsync("/metrics");
        var text = await metrics.Content.ReadAsStringAsync();
        Assert.Contains("\nmedserve_redis_up 0\n", text);
        Assert.Contains("\nmedserve_rate_limit_local_total 8\n", text);
    }

    [Fact]
    public async Task A_redis_setting_that_cannot_work_stops_the_start_naming_it()
    {
        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() =>
            RunningServer.StartAsync(new Dictionary<string, string?> { ["MedServe:Redis:ConnectionString"] = "password=hunter2-secret" }));
        Assert.Contains("Redis:ConnectionString names no host", error.Message);
        Assert.DoesNotContain("hunter2", error.Message);

        var noRedis = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() =>
            RunningServer.StartAsync(new Dictionary<string, string?> { ["MedServe:Store:Notifications"] = "redis" }));
        Assert.Contains("Store:Notifications is redis but Redis:ConnectionString is empty", noRedis.Message);
    }
}
