using System.Data;
using System.Data.Common;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace MedServe.Storage;

/// <summary>
/// One database a store writes to: an embedded SQLite file (one writer at a time, WAL) or a
/// shared PostgreSQL database (serializable transactions, retried when PostgreSQL reports a
/// serialization failure). Stores write one SQL for both where the dialects agree and ask
/// <see cref="Provider"/> where they do not; parameters are named <c>@name</c>, which both accept.
/// </summary>
public sealed class Database : IAsyncDisposable
{
    private const int MaxAttempts = 20;
    private readonly string? _sqlite;
    private readonly SemaphoreSlim _writer = new(1, 1);

    private Database(string? sqlite, NpgsqlDataSource? postgres)
    {
        _sqlite = sqlite;
        Postgres = postgres;
        Provider = postgres is null ? StoreProvider.Sqlite : StoreProvider.Postgres;
    }

    public StoreProvider Provider { get; }

    /// <summary>PostgreSQL's connection pool (null for SQLite): the change feed and the leader election open their own sessions from it.</summary>
    internal NpgsqlDataSource? Postgres { get; }

    /// <summary>Where committed changes are announced to the other replicas (through PostgreSQL).</summary>
    public ChangeFeed? Changes { get; set; }

    /// <summary>An embedded SQLite file (created with its folder if missing), in WAL mode.</summary>
    public static Database OpenSqlite(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var database = new Database(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = true, DefaultTimeout = 30 }.ToString(), null);
        using var connection = new SqliteConnection(database._sqlite);
        connection.Open();
        using var wal = connection.CreateCommand();
        wal.CommandText = "PRAGMA journal_mode = WAL;";
        wal.ExecuteNonQuery();
        return database;
    }

    /// <summary>A PostgreSQL database shared by replicas; its change counters are created if missing.</summary>
    public static async Task<Database> OpenPostgresAsync(string connectionString, TimeProvider time, CancellationToken cancellationToken = default)
    {
        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(connectionString);
        }
        catch (ArgumentException e)
        {
            // The message names the bad keyword, never the string (it may hold a password).
            throw new StoreException($"Store:ConnectionString is not a valid PostgreSQL connection string: {e.Message}");
        }

        builder.ApplicationName ??= "medserve";
        var database = new Database(null, NpgsqlDataSource.Create(builder.ConnectionString));
        try
        {
            await database.MigrateAsync("medserve_storage_migrations", ChangeFeed.Migrations, time, cancellationToken).ConfigureAwait(false);
        }
        catch (NpgsqlException e)
        {
            await database.DisposeAsync().ConfigureAwait(false);
            throw new StoreException($"PostgreSQL at {builder.Host}:{builder.Port} (database '{builder.Database}') cannot be used: {e.Message}", e);
        }

        return database;
    }

    /// <summary>An open connection; SQLite's with foreign keys on and a busy timeout.</summary>
    public async Task<DbConnection> ConnectAsync(CancellationToken cancellationToken = default)
    {
        if (Postgres is not null)
        {
            return await Postgres.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        }

        var connection = new SqliteConnection(_sqlite);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var pragmas = connection.CreateCommand();
        pragmas.CommandText = "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 30000;";
        await pragmas.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        return connection;
    }

    /// <summary>
    /// Runs <paramref name="work"/> in one serializable transaction and commits it. SQLite: one
    /// writer at a time in this process, and an immediate transaction so other processes wait.
    /// PostgreSQL: a serialization failure or deadlock runs the work again (it must touch only the
    /// database). The topics the work marked changed are announced after the commit.
    /// </summary>
    public async Task<T> WriteAsync<T>(Func<DbSession, Task<T>> work, CancellationToken cancellationToken = default)
    {
        if (Postgres is null)
        {
            await _writer.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                return await AttemptAsync(work, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _writer.Release();
            }
        }

        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await AttemptAsync(work, cancellationToken).ConfigureAwait(false);
            }
            catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected && attempt < MaxAttempts)
            {
                // Another replica's transaction won: back off a little (random, growing) and run again.
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(1, 5 * attempt)), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task<T> AttemptAsync<T>(Func<DbSession, Task<T>> work, CancellationToken cancellationToken)
    {
        await using var connection = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(IsolationLevel.Serializable, cancellationToken).ConfigureAwait(false);
        var session = new DbSession(this, connection, transaction);
        var result = await work(session).ConfigureAwait(false);

        // This process acts on its own writes as it makes them; the other replicas hear of them (PostgreSQL only: SQLite has no other).
        var recorded = new List<(string Topic, long Version)>();
        if (Postgres is not null)
        {
            foreach (var topic in session.ChangedTopics)
            {
                recorded.Add((topic, await ChangeFeed.RecordAsync(session, topic, Changes, cancellationToken).ConfigureAwait(false)));
            }
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        foreach (var (topic, version) in recorded)
        {
            Changes?.Committed(topic, version);
        }

        return result;
    }

    /// <summary>Runs <paramref name="work"/> on one connection without a transaction (reads, and single-statement writes).</summary>
    public async Task<T> ReadAsync<T>(Func<DbSession, Task<T>> work, CancellationToken cancellationToken = default)
    {
        await using var connection = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        return await work(new DbSession(this, connection, null)).ConfigureAwait(false);
    }

    public Task<IReadOnlyList<T>> QueryAsync<T>(string sql, Func<DbDataReader, T> read, CancellationToken cancellationToken, params (string Name, object? Value)[] parameters) =>
        ReadAsync(session => session.QueryAsync(sql, read, cancellationToken, parameters), cancellationToken);

    public Task<object?> ScalarAsync(string sql, CancellationToken cancellationToken, params (string Name, object? Value)[] parameters) =>
        ReadAsync(session => session.ScalarAsync(sql, cancellationToken, parameters), cancellationToken);

    /// <summary>Whether <paramref name="exception"/> is a unique or primary-key violation, in either dialect.</summary>
    public static bool IsUniqueViolation(Exception exception) =>
        exception is SqliteException { SqliteErrorCode: 19 } || exception is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation };

    /// <summary>
    /// Brings a component's schema up to date: each migration runs once, in order, recorded in
    /// <paramref name="table"/>. A schema newer than this build is refused (it would be misread).
    /// PostgreSQL: all in one transaction under an advisory lock, so replicas starting together
    /// migrate once.
    /// </summary>
    /// <returns>The schema version now applied.</returns>
    public async Task<long> MigrateAsync(string table, IReadOnlyList<Migration> migrations, TimeProvider time, CancellationToken cancellationToken = default)
    {
        if (!table.All(c => char.IsAsciiLetterLower(c) || c == '_'))
        {
            throw new ArgumentException("a migrations table is named in lowercase letters and underscores", nameof(table));
        }

        await using var connection = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = Postgres is null ? null : await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        var session = new DbSession(this, connection, transaction);
        if (Postgres is not null)
        {
            await session.ExecuteAsync("SELECT pg_advisory_xact_lock(hashtext(@t));", cancellationToken, ("@t", table)).ConfigureAwait(false);
        }

        await session.ExecuteAsync($"CREATE TABLE IF NOT EXISTS {table} (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL);", cancellationToken).ConfigureAwait(false);
        var applied = Convert.ToInt64(await session.ScalarAsync($"SELECT COALESCE(MAX(version), 0) FROM {table};", cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);
        if (applied > migrations.Count)
        {
            throw new StoreException($"schema is at version {applied} (recorded in {table}) but this MedServe knows versions up to {migrations.Count}: it was written by a newer MedServe; run that version, or restore a backup");
        }

        for (var i = (int)applied; i < migrations.Count; i++)
        {
            // SQLite: each migration in its own transaction; PostgreSQL: all inside the one above.
            await using var step = Postgres is null ? await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false) : null;
            var stepSession = step is null ? session : new DbSession(this, connection, step);
            await stepSession.ExecuteAsync(Provider == StoreProvider.Sqlite ? migrations[i].Sqlite : migrations[i].Postgres, cancellationToken).ConfigureAwait(false);
            await stepSession.ExecuteAsync($"INSERT INTO {table} (version, applied_at) VALUES (@v, @t);", cancellationToken,
                ("@v", (long)(i + 1)), ("@t", time.GetUtcNow().ToUnixTimeMilliseconds())).ConfigureAwait(false);
            if (step is not null)
            {
                await step.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        if (transaction is not null)
        {
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        return migrations.Count;
    }

    /// <summary>The schema version recorded in <paramref name="table"/>.</summary>
    public async Task<long> SchemaVersionAsync(string table, CancellationToken cancellationToken = default) =>
        Convert.ToInt64(await ScalarAsync($"SELECT COALESCE(MAX(version), 0) FROM {table};", cancellationToken).ConfigureAwait(false), CultureInfo.InvariantCulture);

    public async ValueTask DisposeAsync()
    {
        if (Postgres is not null)
        {
            await Postgres.DisposeAsync().ConfigureAwait(false);
        }

        // The writer's semaphore is left to the collector: a late write after shutdown waits, it does not throw.
    }
}

/// <summary>One schema step, in SQLite's and PostgreSQL's words (the same text where they agree).</summary>
public sealed record Migration(string Sqlite, string Postgres)
{
    public Migration(string both)
        : this(both, both)
    {
    }
}

/// <summary>A store cannot be opened or used as configured; the message says which setting and why, without secrets.</summary>
public sealed class StoreException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A connection (in a transaction, for writes) that a store's work runs its statements on.</summary>
public sealed class DbSession(Database database, DbConnection connection, DbTransaction? transaction)
{
    private readonly HashSet<string> _changed = new(StringComparer.Ordinal);

    public StoreProvider Provider => database.Provider;

    public DbConnection Connection => connection;

    public DbTransaction? Transaction => transaction;

    internal IReadOnlyCollection<string> ChangedTopics => _changed;

    /// <summary>Announces, once this transaction commits, that <paramref name="topic"/> changed (every replica re-reads it).</summary>
    public void Changed(string topic) => _changed.Add(topic);

    /// <summary>
    /// Makes this transaction the only writer of <paramref name="table"/> until it ends (readers
    /// go on), as SQLite's single writer is: for writers that number rows by MAX + 1 or check then
    /// insert. PostgreSQL: LOCK TABLE, which must come before the transaction's first query, for
    /// the serializable snapshot is taken there and would otherwise predate the other writer's commit.
    /// </summary>
    public Task LockAsync(string table, CancellationToken cancellationToken) =>
        Provider == StoreProvider.Sqlite
            ? Task.CompletedTask
            : table.All(c => char.IsAsciiLetterLower(c) || c == '_')
                ? ExecuteAsync($"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE;", cancellationToken)
                : throw new ArgumentException("a table is named in lowercase letters and underscores", nameof(table));

    /// <summary>Defers foreign-key checks to the commit (a rename updates children before the parent).</summary>
    public Task DeferForeignKeysAsync(CancellationToken cancellationToken) =>
        ExecuteAsync(Provider == StoreProvider.Sqlite ? "PRAGMA defer_foreign_keys = ON;" : "SET CONSTRAINTS ALL DEFERRED;", cancellationToken);

    public async Task<int> ExecuteAsync(string sql, CancellationToken cancellationToken, params (string Name, object? Value)[] parameters)
    {
        await using var command = Command(sql, parameters);
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task<object?> ScalarAsync(string sql, CancellationToken cancellationToken, params (string Name, object? Value)[] parameters)
    {
        await using var command = Command(sql, parameters);
        var value = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return value is DBNull ? null : value;
    }

    public async Task<long> LongAsync(string sql, CancellationToken cancellationToken, params (string Name, object? Value)[] parameters) =>
        Convert.ToInt64(await ScalarAsync(sql, cancellationToken, parameters).ConfigureAwait(false), CultureInfo.InvariantCulture);

    public async Task<IReadOnlyList<T>> QueryAsync<T>(string sql, Func<DbDataReader, T> read, CancellationToken cancellationToken, params (string Name, object? Value)[] parameters)
    {
        await using var command = Command(sql, parameters);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var rows = new List<T>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            rows.Add(read(reader));
        }

        return rows;
    }

    public DbCommand Command(string sql, params (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = transaction;
        foreach (var (name, value) in parameters)
        {
            var parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value ?? DBNull.Value;
            command.Parameters.Add(parameter);
        }

        return command;
    }
}
