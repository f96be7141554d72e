using MedServe.Storage;

namespace MedServe.Drift;

/// <summary>One stored reference: a model (and version, or "" for any) and its summary, a new revision each time it is set.</summary>
public sealed record StoredReference(string Model, string Version, long Revision, string Source, string CreatedBy, DateTimeOffset CreatedAt, string Summary);

/// <summary>Where drift references live: one per model version (or for the whole model), every revision kept.</summary>
public interface IDriftReferenceStore
{
    Task<StoredReference> SaveAsync(string model, string version, string source, string createdBy, string summary, CancellationToken cancellationToken = default);

    /// <summary>The latest revision for the version, else the latest for the whole model, else null.</summary>
    Task<StoredReference?> FindAsync(string model, string? version, CancellationToken cancellationToken = default);
}

/// <summary>Drift references in a <see cref="Database"/> (drift.db in the data dir by default); a new reference is announced to every replica.</summary>
public sealed class DriftReferenceStore : IDriftReferenceStore
{
    public const string ChangeTopic = "drift";

    // Append; never edit a released one. The first is IF NOT EXISTS: files from before migrations adopt it.
    private static readonly Migration[] Migrations =
    [
        new("""
            CREATE TABLE IF NOT EXISTS drift_references (
                model TEXT NOT NULL, version TEXT NOT NULL, revision BIGINT NOT NULL, source TEXT NOT NULL,
                created_by TEXT NOT NULL, created_us BIGINT NOT NULL, summary TEXT NOT NULL,
                PRIMARY KEY (model, version, revision));
            """),
    ];

    private readonly Database _database;
    private readonly TimeProvider _time;

    private DriftReferenceStore(Database database, TimeProvider time)
    {
        _database = database;
        _time = time;
    }

    public static DriftReferenceStore Open(string path, TimeProvider time) => OpenAsync(Database.OpenSqlite(path), time).GetAwaiter().GetResult();

    public static async Task<DriftReferenceStore> OpenAsync(Database database, TimeProvider time, CancellationToken cancellationToken = default)
    {
        await database.MigrateAsync("drift_migrations", Migrations, time, cancellationToken).ConfigureAwait(false);
        return new DriftReferenceStore(database, time);
    }

    public Task<StoredReference> SaveAsync(string model, string version, string source, string createdBy, string summary, CancellationToken cancellationToken = default) =>
        _database.WriteAsync(async session =>
        {
            await session.LockAsync("drift_references", cancellationToken).ConfigureAwait(false);
            var now = DateTimeOffset.FromUnixTimeMilliseconds(_time.GetUtcNow().ToUnixTimeMilliseconds());
            var revision = await session.LongAsync("""
                INSERT INTO drift_references (model, version, revision, source, created_by, created_us, summary)
                SELECT @m, @v, COALESCE(MAX(revision), 0) + 1, @s, @by, @t, @summary FROM drift_references WHERE model = @m AND version = @v
                RETURNING revision;
                """, cancellationToken, ("@m", model), ("@v", version), ("@s", source), ("@by", createdBy), ("@t", now.ToUnixTimeMilliseconds() * 1000), ("@summary", summary)).ConfigureAwait(false);
            session.Changed(ChangeTopic);
            return new StoredReference(model, version, revision, source, createdBy, now, summary);
        }, cancellationToken);

    public async Task<StoredReference?> FindAsync(string model, string? version, CancellationToken cancellationToken = default)
    {
        var rows = await _database.QueryAsync("""
            SELECT model, version, revision, source, created_by, created_us, summary FROM drift_references
            WHERE model = @m AND (version = @v OR version = '') ORDER BY version = @v DESC, revision DESC LIMIT 1;
            """, reader => new StoredReference(reader.GetString(0), reader.GetString(1), reader.GetInt64(2), reader.GetString(3), reader.GetString(4),
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(5) / 1000), reader.GetString(6)), cancellationToken, ("@m", model), ("@v", version ?? "")).ConfigureAwait(false);
        return rows.Count == 0 ? null : rows[0];
    }
}
