using System.Threading.RateLimiting;
using MedServe.Storage;
using StackExchange.Redis;

namespace MedServe.Security;

/// <summary>
/// One key's token bucket kept in Redis, so replicas together grant the key its rate once, not once
/// each. One script call per request refills by Redis's own clock (replicas' clocks may disagree)
/// and takes a token. While Redis cannot be used the key's local bucket answers (see
/// <see cref="SharedRedis"/>: warned once, probed once a second).
/// </summary>
/// <remarks>
/// The synchronous attempt always declines, so ASP.NET's rate-limiting middleware goes on to
/// <see cref="AcquireAsyncCore"/>: a network call must not block a request thread.
/// </remarks>
internal sealed class SharedTokenBucket(SharedRedis redis, string principal, int rate, TimeProvider time) : RateLimiter
{
    // KEYS[1] the bucket; ARGV[1] tokens per second (also the capacity, as the local bucket).
    // Answers {granted, microseconds until a token}. TIME is allowed in scripts since Redis 5
    // (effects replication); the state expires once the bucket would be full again anyway.
    private const string Script = """
        local rate = tonumber(ARGV[1])
        local clock = redis.call('TIME')
        local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
        local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
        local tokens = tonumber(state[1]) or rate
        local at = tonumber(state[2]) or now
        if now > at then tokens = math.min(rate, tokens + (now - at) * rate / 1000000) end
        local granted = 0
        local wait = 0
        if tokens >= 1 then
          tokens = tokens - 1
          granted = 1
        else
          wait = math.ceil((1 - tokens) * 1000000 / rate)
        end
        redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(math.max(now, at)))
        redis.call('PEXPIRE', KEYS[1], 2000)
        return {granted, wait}
        """;

    private static readonly RateLimitLease Declined = new Lease(false, null);
    private static readonly RateLimitLease Granted = new Lease(true, null);

    private readonly TokenBucketRateLimiter _local = new(new TokenBucketRateLimiterOptions
    {
        TokenLimit = rate,
        TokensPerPeriod = rate,
        ReplenishmentPeriod = TimeSpan.FromSeconds(1),
        QueueLimit = 0,
        AutoReplenishment = true,
    });

    private readonly RedisKey[] _key = [redis.Options.KeyPrefix + "rate:" + principal];
    private readonly RedisValue[] _rate = [rate];
    private long _lastUsed = time.GetTimestamp();

    public override TimeSpan? IdleDuration => time.GetElapsedTime(Interlocked.Read(ref _lastUsed));

    public override RateLimiterStatistics? GetStatistics() => _local.GetStatistics();

    protected override RateLimitLease AttemptAcquireCore(int permitCount) => Declined;

    protected override async ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        Interlocked.Exchange(ref _lastUsed, time.GetTimestamp());
        if (permitCount == 1 && redis.ShouldTry())
        {
            try
            {
                var answer = (RedisResult[])(await redis.Database.ScriptEvaluateAsync(Script, _key, _rate).ConfigureAwait(false))!;
                redis.Succeeded();
                return (long)answer[0] == 1 ? Granted : new Lease(false, TimeSpan.FromTicks((long)answer[1] * TimeSpan.TicksPerMicrosecond));
            }
            catch (Exception e) when (e is RedisException or RedisTimeoutException or RedisConnectionException or ObjectDisposedException)
            {
                redis.Failed(e);
            }
        }

        redis.DecidedLocally();
        return _local.AttemptAcquire(permitCount);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _local.Dispose();
        }

        base.Dispose(disposing);
    }

    protected override async ValueTask DisposeAsyncCore() => await _local.DisposeAsync().ConfigureAwait(false);

    /// <summary>A refusal carries when to retry, as the local bucket's does (the 429's message tells rate from concurrency by it).</summary>
    private sealed class Lease(bool acquired, TimeSpan? retryAfter) : RateLimitLease
    {
        public override bool IsAcquired => acquired;

        public override IEnumerable<string> MetadataNames => retryAfter is null ? [] : [MetadataName.RetryAfter.Name];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            metadata = retryAfter;
            return retryAfter is not null && metadataName == MetadataName.RetryAfter.Name;
        }
    }
}
