using MedServe.Compliance.Journal;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace MedServe.Compliance.Predictions;

/// <summary>
/// The embedded prediction store: one SQLite file (WAL, so queries never block the projector),
/// indexed for the monitoring queries: by model, version and time, and by patient and time.
/// Payloads stay encrypted in it, as in the journal.
/// </summary>
public sealed class SqlitePredictionStore : IPredictionStore
{
    private readonly string _connectionString;
    private readonly SemaphoreSlim _writer = new(1, 1);

    private SqlitePredictionStore(string connectionString) => _connectionString = connectionString;

    public static async Task<SqlitePredictionStore> OpenAsync(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var store = new SqlitePredictionStore(new SqliteConnectionStringBuilder { DataSource = path, Pooling = true }.ToString());
        await using var connection = await store.ConnectAsync(default).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = """
            PRAGMA journal_mode=WAL;
            CREATE TABLE IF NOT EXISTS predictions (
                seq INTEGER PRIMARY KEY, time_us INTEGER NOT NULL, model TEXT NOT NULL, version TEXT NOT NULL,
                request_id TEXT NOT NULL, client_request_id TEXT NOT NULL, patient TEXT NOT NULL, outcome TEXT NOT NULL,
                latency_us INTEGER NOT NULL, payload BLOB NOT NULL);
            CREATE INDEX IF NOT EXISTS predictions_by_model ON predictions (model, version, time_us);
            CREATE INDEX IF NOT EXISTS predictions_by_patient ON predictions (patient, time_us) WHERE patient <> '';
            CREATE INDEX IF NOT EXISTS predictions_by_request ON predictions (request_id);
            CREATE INDEX IF NOT EXISTS predictions_by_client_request ON predictions (client_request_id) WHERE client_request_id <> '';
            CREATE INDEX IF NOT EXISTS predictions_by_time ON predictions (time_us);
            CREATE TABLE IF NOT EXISTS outcomes (
                prediction_seq INTEGER PRIMARY KEY, journal_seq INTEGER NOT NULL, envelope BLOB NOT NULL, recorded_us INTEGER NOT NULL, revisions INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS projection (name TEXT PRIMARY KEY, through INTEGER NOT NULL);
            """;
        await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        return store;
    }

    public async Task<long> ProjectedThroughAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT through FROM projection WHERE name = 'journal';";
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long through ? through : 0;
    }

    public async Task ApplyAsync(IReadOnlyList<JournalRecord> records, IReadOnlyList<(long JournalSequence, long PredictionSequence, byte[] Envelope, DateTimeOffset RecordedAt)> outcomes, long through, CancellationToken cancellationToken = default)
    {
        await _writer.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var connection = await ConnectAsync(cancellationToken).ConfigureAwait(false);
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            InsertRows(connection, records);
            foreach (var outcome in outcomes)
            {
                // Journal order decides: a replayed (older) outcome never overwrites a newer one.
                await using var upsert = connection.CreateCommand();
                upsert.Transaction = transaction;
                upsert.CommandText = """
                    INSERT INTO outcomes (prediction_seq, journal_seq, envelope, recorded_us, revisions) VALUES ($p, $j, $e, $t, 1)
                    ON CONFLICT (prediction_seq) DO UPDATE SET journal_seq = excluded.journal_seq, envelope = excluded.envelope, recorded_us = excluded.recorded_us,
                        revisions = outcomes.revisions + 1
                    WHERE excluded.journal_seq > outcomes.journal_seq;
                    """;
                upsert.Parameters.AddWithValue("$p", outcome.PredictionSequence);
                upsert.Parameters.AddWithValue("$j", outcome.JournalSequence);
                upsert.Parameters.AddWithValue("$e", outcome.Envelope);
                upsert.Parameters.AddWithValue("$t", Micros(outcome.RecordedAt));
                await upsert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            await using var mark = connection.CreateCommand();
            mark.Transaction = transaction;
            mark.CommandText = "INSERT INTO projection (name, through) VALUES ('journal', $through) ON CONFLICT (name) DO UPDATE SET through = excluded.through;";
            mark.Parameters.AddWithValue("$through", through);
            await mark.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writer.Release();
        }
    }

    /// <summary>
    /// One prepared statement stepped per row through SQLite's own API: Microsoft.Data.Sqlite's
    /// ExecuteNonQuery costs ~13 us a row here (a data reader and bindings per call), this ~3 us
    /// (bench/Tool record-cost), which is the projection's whole cost on the cores requests need.
    /// </summary>
    private static void InsertRows(SqliteConnection connection, IReadOnlyList<JournalRecord> records)
    {
        const string sql = """
            INSERT OR IGNORE INTO predictions (seq, time_us, model, version, request_id, client_request_id, patient, outcome, latency_us, payload)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10);
            """;
        var db = connection.Handle!;
        Check(db, raw.sqlite3_prepare_v2(db, sql, out var statement));
        using (statement)
        {
            foreach (var record in records)
            {
                var e = record.Entry;
                if (e.Kind != JournalKind.Inference)
                {
                    continue;
                }

                raw.sqlite3_bind_int64(statement, 1, record.Sequence);
                raw.sqlite3_bind_int64(statement, 2, Micros(e.Time));
                raw.sqlite3_bind_text(statement, 3, e.Model);
                raw.sqlite3_bind_text(statement, 4, e.Version);
                raw.sqlite3_bind_text(statement, 5, e.RequestId);
                raw.sqlite3_bind_text(statement, 6, e.ClientRequestId);
                raw.sqlite3_bind_text(statement, 7, e.PatientPseudonym);
                raw.sqlite3_bind_text(statement, 8, e.Outcome);
                raw.sqlite3_bind_int64(statement, 9, e.LatencyMicroseconds);
                raw.sqlite3_bind_blob(statement, 10, e.Payload.Span);
                var step = raw.sqlite3_step(statement);
                if (step != raw.SQLITE_DONE)
                {
                    Check(db, step);
                }

                raw.sqlite3_reset(statement);
            }
        }
    }

    private static void Check(sqlite3 db, int code)
    {
        if (code != raw.SQLITE_OK)
        {
            throw new SqliteException($"SQLite error {code}: {raw.sqlite3_errmsg(db).utf8_to_string()}", code);
        }
    }

    public async Task<IReadOnlyList<StoredPrediction>> QueryAsync(PredictionQuery query, CancellationToken cancellationToken = default)
    {
        await using var connection = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = $"""
            SELECT seq, time_us, model, version, request_id, client_request_id, patient, outcome, latency_us, payload FROM predictions
            WHERE model = $model {(query.Version is null ? "" : "AND version = $version")} {(query.PatientPseudonym is null ? "" : "AND patient = $patient")}
              AND time_us >= $from AND time_us < $to AND seq > $after
            ORDER BY seq LIMIT $limit;
            """;
        command.Parameters.AddWithValue("$model", query.Model);
        if (query.Version is not null)
        {
            command.Parameters.AddWithValue("$version", query.Version);
        }

        if (query.PatientPseudonym is not null)
        {
            command.Parameters.AddWithValue("$patient", query.PatientPseudonym);
        }

        command.Parameters.AddWithValue("$from", Micros(query.From));
        command.Parameters.AddWithValue("$to", Micros(query.To));
        command.Parameters.AddWithValue("$after", query.AfterSequence);
        command.Parameters.AddWithValue("$limit", query.Limit);
        var results = new List<StoredPrediction>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            results.Add(new StoredPrediction(reader.GetInt64(0), FromMicros(reader.GetInt64(1)), reader.GetString(2), reader.GetString(3), reader.GetString(4),
                reader.GetString(5), reader.GetString(6), reader.GetString(7), reader.GetInt64(8), (byte[])reader.GetValue(9)));
        }

        return results;
    }

    public async Task<StoredPrediction?> FindAsync(string id, CancellationToken cancellationToken = default) =>
        (await SelectAsync("WHERE request_id = $id OR (client_request_id = $id AND client_request_id <> '') ORDER BY request_id = $id DESC, seq DESC LIMIT 1", cancellationToken, ("$id", id)).ConfigureAwait(false)).FirstOrDefault();

    public async Task<StoredPrediction?> FindLatestForPatientAsync(string model, string pseudonym, DateTimeOffset before, DateTimeOffset notBefore, CancellationToken cancellationToken = default) =>
        // "patient <> ''" lets SQLite use the partial index by patient (it cannot prove that of a parameter).
        (await SelectAsync("WHERE patient <> '' AND patient = $p AND model = $m AND time_us < $before AND time_us >= $after ORDER BY time_us DESC, seq DESC LIMIT 1", cancellationToken,
            ("$m", model), ("$p", pseudonym), ("$before", Micros(before)), ("$after", Micros(notBefore))).ConfigureAwait(false)).FirstOrDefault();

    public async Task<StoredOutcome?> GetOutcomeAsync(long predictionSequence, CancellationToken cancellationToken = default)
    {
        await using var connection = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT prediction_seq, envelope, recorded_us, revisions FROM outcomes WHERE prediction_seq = $p;";
        command.Parameters.AddWithValue("$p", predictionSequence);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        return await reader.ReadAsync(cancellationToken).ConfigureAwait(false)
            ? new StoredOutcome(reader.GetInt64(0), (byte[])reader.GetValue(1), FromMicros(reader.GetInt64(2)), reader.GetInt32(3))
            : null;
    }

    public async Task<IReadOnlyList<PredictionWithOutcome>> QueryWithOutcomesAsync(string model, string? version, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default)
    {
        await using var connection = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = $"""
            SELECT p.seq, p.time_us, p.model, p.version, p.request_id, p.client_request_id, p.patient, p.outcome, p.latency_us, p.payload,
                   o.envelope, o.recorded_us, o.revisions
            FROM predictions p JOIN outcomes o ON o.prediction_seq = p.seq
            WHERE p.model = $m {(version is null ? "" : "AND p.version = $v")} AND p.time_us >= $from AND p.time_us < $to ORDER BY p.seq;
            """;
        command.Parameters.AddWithValue("$m", model);
        if (version is not null)
        {
            command.Parameters.AddWithValue("$v", version);
        }

        command.Parameters.AddWithValue("$from", Micros(from));
        command.Parameters.AddWithValue("$to", Micros(to));
        var results = new List<PredictionWithOutcome>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var prediction = Read(reader);
            results.Add(new PredictionWithOutcome(prediction, new StoredOutcome(prediction.Sequence, (byte[])reader.GetValue(10), FromMicros(reader.GetInt64(11)), reader.GetInt32(12))));
        }

        return results;
    }

    private const string Select = "SELECT seq, time_us, model, version, request_id, client_request_id, patient, outcome, latency_us, payload FROM predictions";

    private async Task<List<StoredPrediction>> SelectAsync(string where, CancellationToken cancellationToken, params (string Name, object Value)[] parameters)
    {
        await using var connection = await ConnectAsync(cancellationToken).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = Select + " " + where + ";";
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        var results = new List<StoredPrediction>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            results.Add(Read(reader));
        }

        return results;
    }

    private static StoredPrediction Read(SqliteDataReader reader) =>
        new(reader.GetInt64(0), FromMicros(reader.GetInt64(1)), reader.GetString(2), reader.GetString(3), reader.GetString(4),
            reader.GetString(5), reader.GetString(6), reader.GetString(7), reader.GetInt64(8), (byte[])reader.GetValue(9));

    public async Task<long> PruneAsync(DateTimeOffset before, CancellationToken cancellationToken = default)
    {
        long total = 0;
        while (true)
        {
            await _writer.WaitAsync(cancellationToken).ConfigureAwait(false);
            int pruned;
            try
            {
                await using var connection = await ConnectAsync(cancellationToken).ConfigureAwait(false);
                await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await using var command = connection.CreateCommand();
                command.Transaction = transaction;
                command.CommandText = """
                    CREATE TEMP TABLE IF NOT EXISTS pruning (seq INTEGER PRIMARY KEY);
                    DELETE FROM pruning;
                    INSERT INTO pruning SELECT seq FROM predictions WHERE time_us < $before ORDER BY time_us LIMIT $batch;
                    DELETE FROM outcomes WHERE prediction_seq IN (SELECT seq FROM pruning);
                    DELETE FROM predictions WHERE seq IN (SELECT seq FROM pruning);
                    SELECT COUNT(*) FROM pruning;
                    """;
                command.Parameters.AddWithValue("$before", Micros(before));
                command.Parameters.AddWithValue("$batch", PruneBatch);
                pruned = Convert.ToInt32(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false), System.Globalization.CultureInfo.InvariantCulture);
                await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                _writer.Release();
            }

            total += pruned;
            if (pruned < PruneBatch)
            {
                return total;
            }
        }
    }

    /// <summary>Predictions removed per transaction by <see cref="PruneAsync"/>.</summary>
    internal const int PruneBatch = 5000;

    public async Task ResetAsync(CancellationToken cancellationToken = default)
    {
        await _writer.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await using var connection = await ConnectAsync(cancellationToken).ConfigureAwait(false);
            await using var command = connection.CreateCommand();
            command.CommandText = "DELETE FROM predictions; DELETE FROM outcomes; DELETE FROM projection;";
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writer.Release();
        }
    }

    public ValueTask DisposeAsync()
    {
        SqliteConnection.ClearPool(new SqliteConnection(_connectionString));
        _writer.Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task<SqliteConnection> ConnectAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        return connection;
    }

    // Clamped: an open window's bounds (MinValue, MaxValue) are beyond what microseconds since 1970 hold.
    internal static long Micros(DateTimeOffset time) =>
        time == DateTimeOffset.MaxValue ? long.MaxValue : time == DateTimeOffset.MinValue ? long.MinValue : (time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / 10;

    internal static DateTimeOffset FromMicros(long micros) => DateTimeOffset.UnixEpoch.AddTicks(micros * 10);
}
