using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace MedServe.Storage;

/// <summary>
/// <c>Redis:ConnectionString</c> (StackExchange.Redis form: <c>host:port,password=...,ssl=true</c>),
/// empty for none: then rate limits are per replica. <c>Redis:Timeout</c> bounds what one call
/// may add to a request while Redis is slow.
/// </summary>
public sealed class RedisOptions
{
    public string? ConnectionString { get; set; }

    /// <summary>Before every key this server writes, so several deployments may share one Redis.</summary>
    public string KeyPrefix { get; set; } = "medserve:";

    public TimeSpan Timeout { get; set; } = TimeSpan.FromMilliseconds(250);

    public bool Enabled => !string.IsNullOrWhiteSpace(ConnectionString);

    /// <summary>A refusal for a setting that cannot work, naming the setting and never the password; null when usable.</summary>
    public string? Problem()
    {
        if (!Enabled)
        {
            return null;
        }

        if (Timeout <= TimeSpan.Zero)
        {
            return "Redis:Timeout must be positive";
        }

        try
        {
            return ConfigurationOptions.Parse(ConnectionString!).EndPoints.Count == 0 ? "Redis:ConnectionString names no host (host:port,...)" : null;
        }
        catch (ArgumentException e)
        {
            // The parser names the option it could not read, not its value.
            return $"Redis:ConnectionString cannot be read: {e.Message}";
        }
    }
}

/// <summary>
/// The one connection to Redis, shared by what needs it (the rate limits, and the change
/// notifications when <c>Store:Notifications</c> is redis). It never stops the
/// server: it connects in the background, calls fail at once while it is down (no queueing behind a
/// dead socket), and the outage is logged once when it starts and once when it ends.
/// </summary>
public sealed class SharedRedis : IAsyncDisposable
{
    private readonly ILogger<SharedRedis> _logger;
    private readonly ConnectionMultiplexer _connection;
    private int _down;
    private long _local;
    private long _nextProbe;

    private SharedRedis(ConnectionMultiplexer connection, RedisOptions options, ILogger<SharedRedis> logger)
    {
        _connection = connection;
        _logger = logger;
        Options = options;
        Where = string.Join(",", connection.GetEndPoints().Select(e => e.ToString()));
    }

    public RedisOptions Options { get; }

    /// <summary>host:port of the server(s), for messages (never the password).</summary>
    public string Where { get; }

    /// <summary>True while calls reach Redis; false from a failed call until one succeeds.</summary>
    public bool Up => Volatile.Read(ref _down) == 0 && _connection.IsConnected;

    /// <summary>
    /// Whether a caller should try Redis now: always while it is up; while it is down, one caller a
    /// second (the probe), so a slow or dead Redis costs the others nothing.
    /// </summary>
    public bool ShouldTry()
    {
        if (!_connection.IsConnected)
        {
            Failed("no connection");
            return false;
        }

        if (Volatile.Read(ref _down) == 0)
        {
            return true;
        }

        var now = Environment.TickCount64;
        var next = Interlocked.Read(ref _nextProbe);
        return now >= next && Interlocked.CompareExchange(ref _nextProbe, now + 1000, next) == next;
    }

    /// <summary>Decisions a caller made alone because Redis could not be used, for /metrics.</summary>
    public long LocalDecisions => Interlocked.Read(ref _local);

    /// <summary>A caller decided alone (Redis down or failing).</summary>
    public void DecidedLocally() => Interlocked.Increment(ref _local);

    public IDatabase Database => _connection.GetDatabase();

    public ISubscriber Subscriber => _connection.GetSubscriber();

    /// <summary>A pub/sub channel under this deployment's key prefix.</summary>
    public RedisChannel Channel(string name) => RedisChannel.Literal(Options.KeyPrefix + name);

    /// <summary>Starts connecting and returns at once (within the connect timeout): an unreachable Redis is warned of, not fatal.</summary>
    public static SharedRedis Connect(RedisOptions options, ILogger<SharedRedis> logger)
    {
        var configuration = ConfigurationOptions.Parse(options.ConnectionString!);
        configuration.AbortOnConnectFail = false;
        configuration.BacklogPolicy = BacklogPolicy.FailFast;
        configuration.ConnectTimeout = (int)Math.Max(options.Timeout.TotalMilliseconds, 1000);
        configuration.AsyncTimeout = (int)options.Timeout.TotalMilliseconds;
        configuration.SyncTimeout = (int)options.Timeout.TotalMilliseconds;
        configuration.ReconnectRetryPolicy = new LinearRetry(500);
        configuration.ClientName ??= "medserve";
        var connection = ConnectionMultiplexer.Connect(configuration);
        var redis = new SharedRedis(connection, options, logger);
        if (!connection.IsConnected)
        {
            redis.Failed($"no connection within {configuration.ConnectTimeout} ms at start");
        }

        connection.ConnectionRestored += (_, _) => redis.Succeeded();
        return redis;
    }

    /// <summary>A call failed: the first failure of an outage is logged, with what the caller does instead.</summary>
    public void Failed(Exception error) => Failed(error.GetType().Name + ": " + error.Message);

    private void Failed(string why)
    {
        if (Interlocked.Exchange(ref _down, 1) == 0)
        {
            _logger.LogWarning("Redis at {Where} cannot be used ({Error}): rate limits are counted by each replica alone until it is back, so a key may get its rate once per replica (and with Store:Notifications=redis, changes reach the other replicas by the poll)", Where, why);
        }
    }

    public void Succeeded()
    {
        if (Interlocked.Exchange(ref _down, 0) == 1)
        {
            _logger.LogWarning("Redis at {Where} is reachable again: rate limits are shared by the replicas again", Where);
        }
    }

    public async ValueTask DisposeAsync() => await _connection.DisposeAsync().ConfigureAwait(false);
}
