using System.Threading.RateLimiting;
using MedServe.Storage;
using StackExchange.Redis;

namespace MedServe.Security;

/// <summary>
/// One key's token bucket kept in Redis, so replicas together grant the key its rate once, not once
/// each. A script call refills by Redis's own clock (replicas' clocks may disagree) and takes as
/// many tokens as this replica was asked for in the last 100 ms (one for a slow key, so its count is
/// exact; at most a fiftieth of the rate), which it spends over the next 100 ms: what it does not
/// spend is lost, never granted twice. So a key at thousands of requests a second costs Redis about
/// ten calls a second per replica, not one per request; and one call at a time per key, the
/// requests that find nothing held waiting on it, so a burst cannot drain the bucket in parallel.
/// While Redis cannot be used the key's local bucket answers (see <see cref="SharedRedis"/>: warned
/// once, probed once a second).
/// </summary>
/// <remarks>
/// The synchronous attempt declines unless tokens are held, so ASP.NET's rate-limiting
/// middleware goes on to <see cref="AcquireAsyncCore"/>: a network call must not block a request thread.
/// </remarks>
internal sealed class SharedTokenBucket(SharedRedis redis, string principal, int rate, TimeProvider time) : RateLimiter
{
    // KEYS[1] the bucket; ARGV[1] tokens per second (also the capacity, as the local bucket);
    // ARGV[2] tokens wanted. Answers {tokens granted (0 or more), microseconds until one}. TIME is
    // allowed in scripts since Redis 5 (effects replication); the state expires once the bucket
    // would be full again anyway.
    private const string Script = """
        local rate = tonumber(ARGV[1])
        local want = tonumber(ARGV[2])
        local clock = redis.call('TIME')
        local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
        local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
        local tokens = tonumber(state[1]) or rate
        local at = tonumber(state[2]) or now
        if now > at then tokens = math.min(rate, tokens + (now - at) * rate / 1000000) end
        local granted = 0
        local wait = 0
        if tokens >= 1 then
          granted = math.min(want, math.floor(tokens))
          tokens = tokens - granted
        else
          wait = math.ceil((1 - tokens) * 1000000 / rate)
        end
        redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(math.max(now, at)))
        redis.call('PEXPIRE', KEYS[1], 2000)
        return {granted, wait}
        """;

    /// <summary>How long tokens taken from Redis may be spent here, and the window demand is measured over.</summary>
    private static readonly TimeSpan Window = TimeSpan.FromMilliseconds(100);

    /// <summary>Requests that find nothing held wait on the call in flight, then try again; a fourth miss declines.</summary>
    private const int Refills = 4;

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
    private readonly long _windowTicks = (long)(Window.TotalSeconds * time.TimestampFrequency);
    private readonly long _mostWanted = Math.Max(1, rate / 50);
    private readonly Lock _gate = new();

    // Guarded by _gate.
    private long _held;
    private long _heldUntil;
    private long _asked;
    private long _askedBefore;
    private long _windowStart = time.GetTimestamp();
    private Task<Refill>? _refilling;

    private long _lastUsed = time.GetTimestamp();
    private long _calls;

    public override TimeSpan? IdleDuration => time.GetElapsedTime(Interlocked.Read(ref _lastUsed));

    /// <summary>Script calls made to Redis (for tests: chunking keeps this far below the requests).</summary>
    internal long RedisCalls => Interlocked.Read(ref _calls);

    public override RateLimiterStatistics? GetStatistics() => _local.GetStatistics();

    protected override RateLimitLease AttemptAcquireCore(int permitCount) => permitCount == 1 && TakeHeld(Count.IfServed) ? Granted : Declined;

    protected override async ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        Interlocked.Exchange(ref _lastUsed, time.GetTimestamp());
        if (permitCount != 1)
        {
            return Decide(permitCount);
        }

        if (TakeHeld(Count.Always))
        {
            return Granted;
        }

        for (var attempt = 0; attempt < Refills; attempt++)
        {
            if (!redis.ShouldTry())
            {
                return Decide(permitCount);
            }

            var refill = await RefillAsync().ConfigureAwait(false);
            if (refill.Failed)
            {
                return Decide(permitCount);
            }

            if (TakeHeld(Count.Never))
            {
                return Granted;
            }

            if (refill.Granted == 0)
            {
                return new Lease(false, refill.Wait);
            }
        }

        return Declined;
    }

    private RateLimitLease Decide(int permitCount)
    {
        redis.DecidedLocally();
        return _local.AttemptAcquire(permitCount);
    }

    /// <summary>Joins the call in flight for this key, or makes it, holding what it grants.</summary>
    private async Task<Refill> RefillAsync()
    {
        TaskCompletionSource<Refill>? mine = null;
        Task<Refill> refilling;
        long want;
        lock (_gate)
        {
            if (_refilling is null)
            {
                mine = new TaskCompletionSource<Refill>(TaskCreationOptions.RunContinuationsAsynchronously);
                _refilling = mine.Task;
            }

            refilling = _refilling;
            want = Math.Clamp(Math.Max(_asked, _askedBefore), 1, _mostWanted);
        }

        if (mine is null)
        {
            return await refilling.ConfigureAwait(false);
        }

        var refill = Refill.Broken;
        try
        {
            Interlocked.Increment(ref _calls);
            var answer = (RedisResult[])(await redis.Database.ScriptEvaluateAsync(Script, _key, [rate, want]).ConfigureAwait(false))!;
            redis.Succeeded();
            refill = new Refill(false, (long)answer[0], TimeSpan.FromTicks((long)answer[1] * TimeSpan.TicksPerMicrosecond));
        }
        catch (Exception e) when (e is RedisException or RedisTimeoutException or RedisConnectionException or ObjectDisposedException)
        {
            redis.Failed(e);
        }
        finally
        {
            lock (_gate)
            {
                if (refill.Granted > 0)
                {
                    var now = time.GetTimestamp();
                    _held = (now < _heldUntil ? _held : 0) + refill.Granted;
                    _heldUntil = now + _windowTicks;
                }

                _refilling = null;
            }

            mine.SetResult(refill);
        }

        return refill;
    }

    /// <summary>
    /// Spends a token this replica took earlier, if it has one still fresh. Each request is counted
    /// once towards the next call's size: when served from here, or at its first miss.
    /// </summary>
    private bool TakeHeld(Count count)
    {
        lock (_gate)
        {
            var now = time.GetTimestamp();
            var fresh = _held > 0 && now < _heldUntil;
            if (count == Count.Always || (fresh && count == Count.IfServed))
            {
                if (now - _windowStart >= _windowTicks)
                {
                    _askedBefore = now - _windowStart < 2 * _windowTicks ? _asked : 0;
                    _asked = 0;
                    _windowStart = now;
                }

                _asked++;
            }

            if (fresh)
            {
                _held--;
                return true;
            }

            _held = 0;
            return false;
        }
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

    /// <summary>Whether a look at the held tokens counts the request towards demand (each request once).</summary>
    private enum Count
    {
        IfServed,
        Always,
        Never,
    }

    private readonly record struct Refill(bool Failed, long Granted, TimeSpan Wait)
    {
        public static readonly Refill Broken = new(true, 0, TimeSpan.Zero);
    }

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
