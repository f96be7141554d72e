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

    /// <summary>
    /// An Azure Blob container that holds every replica's artifacts; the artifacts folder is then
    /// each replica's own cache of it and needs no shared volume. Off when both settings are empty.
    /// </summary>
    public ArtifactsBlobOptions ArtifactsBlob { get; set; } = new();

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
                : ArtifactsBlob.Problem();
}

/// <summary><c>Store:ArtifactsBlob:ConnectionString</c> (an Azure Storage connection string) and <c>Store:ArtifactsBlob:Container</c>.</summary>
public sealed partial class ArtifactsBlobOptions
{
    public string? ConnectionString { get; set; }

    public string? Container { get; set; }

    public bool Enabled => !string.IsNullOrWhiteSpace(ConnectionString) || !string.IsNullOrWhiteSpace(Container);

    /// <summary>A refusal naming the setting and never the connection string's value; null when usable or off.</summary>
    public string? Problem()
    {
        if (!Enabled)
        {
            return null;
        }

        if (string.IsNullOrWhiteSpace(ConnectionString))
        {
            return "Store:ArtifactsBlob:Container is set but Store:ArtifactsBlob:ConnectionString is empty: set it (DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...)";
        }

        if (string.IsNullOrWhiteSpace(Container))
        {
            return "Store:ArtifactsBlob:ConnectionString is set but Store:ArtifactsBlob:Container is empty: name the blob container";
        }

        if (!ContainerName().IsMatch(Container))
        {
            return $"Store:ArtifactsBlob:Container '{Container}' is not a blob container name: 3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit";
        }

        // Only the keys are looked at, so nothing of a value can reach the message.
        var keys = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var part in ConnectionString.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var equals = part.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                return "Store:ArtifactsBlob:ConnectionString cannot be read: it must be key=value pairs separated by ';' (its value is not shown)";
            }

            keys.Add(part[..equals].Trim());
        }

        return keys.Contains("AccountName") || keys.Contains("BlobEndpoint") || keys.Contains("UseDevelopmentStorage")
            ? null
            : "Store:ArtifactsBlob:ConnectionString names no account: it needs AccountName (with AccountKey or SharedAccessSignature) or BlobEndpoint (its value is not shown)";
    }

    [System.Text.RegularExpressions.GeneratedRegex("^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")]
    private static partial System.Text.RegularExpressions.Regex ContainerName();
}
