namespace MedServe.Storage;

/// <summary>Where the shared state lives: the embedded SQLite files of one data dir, or one PostgreSQL database for many replicas.</summary>
public enum StoreProvider
{
    Sqlite,
    Postgres,
}

/// <summary>
/// How a replica tells the others it changed shared state: PostgreSQL's NOTIFY (the default),
/// Redis pub/sub (where LISTEN cannot be used: behind PgBouncer in transaction mode or a proxy
/// that pins sessions), or the polled counters alone. The counters are polled in every case.
/// </summary>
public enum ChangeNotifications
{
    Postgres,
    Redis,
    Poll,
}

/// <summary>
/// <c>Store:Provider</c> (sqlite, the default, or postgres) and <c>Store:ConnectionString</c>
/// (PostgreSQL's, in Npgsql's key=value form; ignored for SQLite, whose files are in the data dir).
/// </summary>
public sealed class StoreOptions
{
    public StoreProvider Provider { get; set; } = StoreProvider.Sqlite;

    public string? ConnectionString { get; set; }

    /// <summary>
    /// The registry's content-addressed artifacts: &lt;DataDir&gt;/artifacts by default; with several
    /// replicas, a folder they share (a ReadWriteMany volume), so a version registered on one can be
    /// materialized on all. Files are written once under their hash and checked on every read.
    /// </summary>
    public string? ArtifactsPath { get; set; }

    /// <summary>How often a replica reads the change counters when a notification may have been missed (PostgreSQL).</summary>
    public TimeSpan ChangePollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The channel for changes between replicas (<c>Store:Notifications</c>: postgres, redis or poll).</summary>
    public ChangeNotifications Notifications { get; set; } = ChangeNotifications.Postgres;

    /// <summary>How often a replica that does not lead a control loop tries to take it over.</summary>
    public TimeSpan LeaderRetryInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>A refusal for a setting that cannot work, naming the setting; null when the options are usable.</summary>
    public string? Problem() =>
        Provider == StoreProvider.Postgres && string.IsNullOrWhiteSpace(ConnectionString)
            ? "Store:Provider is postgres but Store:ConnectionString is empty: set it (Host=...;Database=...;Username=...;Password=...)"
            : ChangePollInterval <= TimeSpan.Zero || LeaderRetryInterval <= TimeSpan.Zero
                ? "Store:ChangePollInterval and Store:LeaderRetryInterval must be positive"
                : null;
}
