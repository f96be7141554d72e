using Microsoft.Data.Sqlite;

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

/// <summary>The embedded default: drift.db in the data dir.</summary>
public sealed class SqliteDriftReferenceStore : IDriftReferenceStore
{
    private readonly string _connectionString;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _writer = new(1, 1);

    private SqliteDriftReferenceStore(string path, TimeProvider time)
    {
        _connectionString = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true, DefaultTimeout = 30 }.ToString();
        _time = time;
    }

    public static SqliteDriftReferenceStore Open(string path, TimeProvider time)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var store = new SqliteDriftReferenceStore(path, time);
        using var connection = new SqliteConnection(store._connectionString);
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            PRAGMA journal_mode = WAL;
            CREATE TABLE IF NOT EXISTS drift_references (
                model TEXT NOT NULL, version TEXT NOT NULL, revision INTEGER NOT NULL, source TEXT NOT NULL,
                created_by TEXT NOT NULL, created_us INTEGER NOT NULL, summary TEXT NOT NULL,
                PRIMARY KEY (model, version, revision));
            """;
        command.ExecuteNonQuery();
        return store;
    }

    public async Task<StoredReference> SaveAsync(string model, string version, string source, string createdBy, string summary, CancellationToken cancellationToken = default)
    {
        await _writer.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var connection = new SqliteConnection(_connectionString);
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = """
                INSERT INTO drift_references (model, version, revision, source, created_by, created_us, summary)
                SELECT $m, $v, COALESCE(MAX(revision), 0) + 1, $s, $by, $t, $summary FROM drift_references WHERE model = $m AND version = $v
                RETURNING revision;
                """;
            var now = _time.GetUtcNow();
            command.Parameters.AddWithValue("$m", model);
            command.Parameters.AddWithValue("$v", version);
            command.Parameters.AddWithValue("$s", source);
            command.Parameters.AddWithValue("$by", createdBy);
            command.Parameters.AddWithValue("$t", now.ToUnixTimeMilliseconds() * 1000);
            command.Parameters.AddWithValue("$summary", summary);
            var revision = Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            return new StoredReference(model, version, revision, source, createdBy, DateTimeOffset.FromUnixTimeMilliseconds(now.ToUnixTimeMilliseconds()), summary);
        }
        finally
        {
            _writer.Release();
        }
    }

    public async Task<StoredReference?> FindAsync(string model, string? version, CancellationToken cancellationToken = default)
    {
        await using var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT model, version, revision, source, created_by, created_us, summary FROM drift_references
            WHERE model = $m AND (version = $v OR version = '') ORDER BY version = $v DESC, revision DESC LIMIT 1;
            """;
        command.Parameters.AddWithValue("$m", model);
        command.Parameters.AddWithValue("$v", version ?? "");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false)
            ? new StoredReference(reader.GetString(0), reader.GetString(1), reader.GetInt64(2), reader.GetString(3), reader.GetString(4),
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(5) / 1000), reader.GetString(6))
            : null;
    }
}
