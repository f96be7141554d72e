using System.Globalization;
using System.Threading.Channels;
using Microsoft.Data.Sqlite;

namespace MedServe.Compliance.Audit;

/// <summary>What verification found: the chain is whole, or the first record that is not, and how.</summary>
public sealed record AuditVerdict(bool Intact, long Records, long? FirstBadSequence, string? Problem);

/// <summary>
/// An append-only, hash-chained audit log in SQLite. Appends are group-committed: one writer loop
/// takes every waiting record, chains and writes them in one transaction, and only then completes
/// their tasks, so an answered request's record is durable (synchronous=FULL) before the answer
/// leaves. Checkpoints sign the chain's head with the server's ECDSA key every N records.
/// </summary>
public sealed class SqliteAuditStore : IAuditStore, IAsyncDisposable
{
    private readonly Channel<(AuditEvent Event, TaskCompletionSource Done)> _pending = Channel.CreateUnbounded<(AuditEvent, TaskCompletionSource)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly string _connectionString;
    private readonly System.Security.Cryptography.ECDsa _signer;
    private readonly int _checkpointEvery;
    private readonly Task _writer;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _sequence;
    private string _head = AuditRecord.Genesis;

    private SqliteAuditStore(string path, System.Security.Cryptography.ECDsa signer, int checkpointEvery)
    {
        _connectionString = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true }.ToString();
        _signer = signer;
        _checkpointEvery = checkpointEvery;
        var thread = new Thread(() =>
        {
            try
            {
                WriteLoop();
                _stopped.TrySetResult();
            }
            catch (Exception e)
            {
                _stopped.TrySetException(e);
            }
        })
        { IsBackground = true, Name = "audit writer" };
        thread.Start();
        _writer = _stopped.Task;
    }

    /// <summary>Records committed so far (and so batches): for measuring group commit.</summary>
    public long Commits { get; private set; }

    public static async Task<SqliteAuditStore> OpenAsync(string path, System.Security.Cryptography.ECDsa signer, int checkpointEvery = 1000)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        await using (var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path }.ToString()))
        {
            await connection.OpenAsync().ConfigureAwait(false);
            await using var command = connection.CreateCommand();
            command.CommandText = """
                PRAGMA journal_mode=WAL;
                CREATE TABLE IF NOT EXISTS audit_records (
                    seq BIGINT PRIMARY KEY, time_ms BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, resource TEXT NOT NULL,
                    outcome TEXT NOT NULL, request_id TEXT NOT NULL, client TEXT NOT NULL, patient TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS audit_checkpoints (seq BIGINT PRIMARY KEY, hash TEXT NOT NULL, signature TEXT NOT NULL);
                """;
            await command.ExecuteNonQueryAsync().ConfigureAwait(false);
        }

        var log = new SqliteAuditStore(path, signer, checkpointEvery);
        var last = (await log.ReadAsync(long.MaxValue - 1, 1, descending: true).ConfigureAwait(false)).FirstOrDefault();
        if (last is not null)
        {
            log._sequence = last.Sequence;
            log._head = last.Hash;
        }

        return log;
    }

    /// <summary>Appends an event; completes once it is on disk.</summary>
    public Task AppendAsync(AuditEvent auditEvent)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_pending.Writer.TryWrite((auditEvent, done)))
        {
            done.SetException(new InvalidOperationException("the audit log is closed"));
        }

        return done.Task;
    }

    /// <summary>Walks the whole chain: names the first record modified, deleted, inserted or reordered, and checks every checkpoint's signature.</summary>
    public async Task<AuditVerdict> VerifyAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT seq, time_ms, actor, action, resource, outcome, request_id, client, patient, prev_hash, hash FROM audit_records ORDER BY seq;";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var previous = AuditRecord.Genesis;
        long expected = 1;
        long count = 0;
        var hashes = new Dictionary<long, string>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var record = Read(reader);
            count++;
            if (record.Sequence != expected)
            {
                return new AuditVerdict(false, count, expected, record.Sequence > expected
                    ? $"record {expected} is missing (deleted): the next record is {record.Sequence}"
                    : $"record {record.Sequence} appears out of order or twice");
            }

            if (AuditRecord.ComputeHash(record.Sequence, record.Event, record.PreviousHash) != record.Hash)
            {
                return new AuditVerdict(false, count, record.Sequence, $"record {record.Sequence} was modified: its content does not match its hash");
            }

            if (record.PreviousHash != previous)
            {
                return new AuditVerdict(false, count, record.Sequence, $"record {record.Sequence} does not follow record {record.Sequence - 1}: a record was inserted, removed or reordered before it");
            }

            hashes[record.Sequence] = record.Hash;
            previous = record.Hash;
            expected++;
        }

        await reader.CloseAsync().ConfigureAwait(false);
        await using var checkpoints = connection.CreateCommand();
        checkpoints.CommandText = "SELECT seq, hash, signature FROM audit_checkpoints ORDER BY seq;";
        await using var rows = await checkpoints.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await rows.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var seq = rows.GetInt64(0);
            var hash = rows.GetString(1);
            var signature = Convert.FromBase64String(rows.GetString(2));
            if (!_signer.VerifyData(System.Text.Encoding.UTF8.GetBytes($"{seq}:{hash}"), signature, System.Security.Cryptography.HashAlgorithmName.SHA256))
            {
                return new AuditVerdict(false, count, seq, $"checkpoint at record {seq} has an invalid signature");
            }

            if (!hashes.TryGetValue(seq, out var actual) || actual != hash)
            {
                return new AuditVerdict(false, count, seq, $"the chain no longer matches the signed checkpoint at record {seq}: the log was rewritten");
            }
        }

        return new AuditVerdict(true, count, null, null);
    }

    public async Task<IReadOnlyList<AuditRecord>> ReadAsync(long fromSequence, int limit, bool descending = false)
    {
        await using var connection = await OpenConnectionAsync(CancellationToken.None).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = descending
            ? "SELECT seq, time_ms, actor, action, resource, outcome, request_id, client, patient, prev_hash, hash FROM audit_records WHERE seq <= $s ORDER BY seq DESC LIMIT $n;"
            : "SELECT seq, time_ms, actor, action, resource, outcome, request_id, client, patient, prev_hash, hash FROM audit_records WHERE seq >= $s ORDER BY seq LIMIT $n;";
        command.Parameters.AddWithValue("$s", fromSequence);
        command.Parameters.AddWithValue("$n", limit);
        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        var records = new List<AuditRecord>();
        while (await reader.ReadAsync().ConfigureAwait(false))
        {
            records.Add(Read(reader));
        }

        return records;
    }

    /// <summary>The records whose time lies in [<paramref name="from"/>, <paramref name="to"/>), in chain order.</summary>
    public async Task<IReadOnlyList<AuditRecord>> ReadRangeAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default)
    {
        // Times are stored as whole milliseconds, so "time >= t" and "time < t" both hold exactly when time_ms >= ceiling(t in ms).
        static long CeilingMilliseconds(DateTimeOffset t)
        {
            var ms = t.ToUnixTimeMilliseconds();
            return t > DateTimeOffset.FromUnixTimeMilliseconds(ms) ? ms + 1 : ms;
        }

        await using var connection = await OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT seq, time_ms, actor, action, resource, outcome, request_id, client, patient, prev_hash, hash FROM audit_records WHERE time_ms >= $from AND time_ms < $to ORDER BY seq;";
        command.Parameters.AddWithValue("$from", CeilingMilliseconds(from));
        command.Parameters.AddWithValue("$to", CeilingMilliseconds(to));
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var records = new List<AuditRecord>();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            records.Add(Read(reader));
        }

        return records;
    }

    public async ValueTask DisposeAsync()
    {
        _pending.Writer.TryComplete();
        await _writer.ConfigureAwait(false);
    }

    /// <summary>
    /// The one writer, on a thread of its own (a commit blocks on fsync; the thread pool should not),
    /// over one connection with its statements prepared once: per batch only BEGIN, the inserts and
    /// the COMMIT remain.
    /// </summary>
    private void WriteLoop()
    {
        var batch = new List<(AuditEvent Event, TaskCompletionSource Done)>();
        Writer? writer = null;
        try
        {
            while (_pending.Reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
            {
                batch.Clear();
                while (batch.Count < 10_000 && _pending.Reader.TryRead(out var item))
                {
                    batch.Add(item);
                }

                try
                {
                    writer ??= new Writer(_connectionString);
                    Commit(writer, batch);
                    foreach (var (_, done) in batch)
                    {
                        done.TrySetResult();
                    }
                }
                catch (Exception e) when (e is SqliteException or IOException or InvalidOperationException)
                {
                    // Fail closed: the callers learn their record is not durable. The next batch starts on a fresh connection.
                    writer?.Dispose();
                    writer = null;
                    foreach (var (_, done) in batch)
                    {
                        done.TrySetException(new InvalidOperationException($"the audit record could not be written: {e.Message}", e));
                    }
                }
            }
        }
        finally
        {
            writer?.Dispose();
        }
    }

    private void Commit(Writer writer, List<(AuditEvent Event, TaskCompletionSource Done)> batch)
    {
        using var transaction = writer.Connection.BeginTransaction();
        writer.Insert.Transaction = transaction;
        writer.Checkpoint.Transaction = transaction;
        var sequence = _sequence;
        var head = _head;
        var p = writer.InsertParameters;
        foreach (var (e, _) in batch)
        {
            sequence++;
            var hash = AuditRecord.ComputeHash(sequence, e, head);
            p[0].Value = sequence;
            p[1].Value = e.Time.ToUnixTimeMilliseconds();
            p[2].Value = e.Actor;
            p[3].Value = e.Action;
            p[4].Value = e.Resource;
            p[5].Value = e.Outcome;
            p[6].Value = e.RequestId;
            p[7].Value = e.ClientAddress;
            p[8].Value = e.PatientPseudonym;
            p[9].Value = head;
            p[10].Value = hash;
            writer.Insert.ExecuteNonQuery();
            if (sequence % _checkpointEvery == 0)
            {
                writer.Checkpoint.Parameters[0].Value = sequence;
                writer.Checkpoint.Parameters[1].Value = hash;
                writer.Checkpoint.Parameters[2].Value = Convert.ToBase64String(_signer.SignData(System.Text.Encoding.UTF8.GetBytes($"{sequence}:{hash}"), System.Security.Cryptography.HashAlgorithmName.SHA256));
                writer.Checkpoint.ExecuteNonQuery();
            }

            head = hash;
        }

        transaction.Commit();
        _sequence = sequence;
        _head = head;
        Commits++;
    }

    /// <summary>The writer's connection and prepared statements.</summary>
    private sealed class Writer : IDisposable
    {
        public Writer(string connectionString)
        {
            Connection = new SqliteConnection(connectionString);
            Connection.Open();
            using (var pragma = Connection.CreateCommand())
            {
                pragma.CommandText = "PRAGMA synchronous=FULL; PRAGMA busy_timeout=30000;";
                pragma.ExecuteNonQuery();
            }

            Insert = Connection.CreateCommand();
            Insert.CommandText = "INSERT INTO audit_records VALUES ($seq, $t, $actor, $action, $resource, $outcome, $rid, $client, $patient, $prev, $hash);";
            InsertParameters = new[] { "$seq", "$t", "$actor", "$action", "$resource", "$outcome", "$rid", "$client", "$patient", "$prev", "$hash" }
                .Select(n => Insert.Parameters.Add(new SqliteParameter { ParameterName = n, Value = DBNull.Value })).ToArray();
            Checkpoint = Connection.CreateCommand();
            Checkpoint.CommandText = "INSERT INTO audit_checkpoints VALUES ($s, $h, $sig);";
            foreach (var n in new[] { "$s", "$h", "$sig" })
            {
                Checkpoint.Parameters.Add(new SqliteParameter { ParameterName = n, Value = DBNull.Value });
            }
        }

        public SqliteConnection Connection { get; }

        public SqliteCommand Insert { get; }

        public SqliteParameter[] InsertParameters { get; }

        public SqliteCommand Checkpoint { get; }

        public void Dispose()
        {
            Insert.Dispose();
            Checkpoint.Dispose();
            Connection.Dispose();
        }
    }

    private async Task<SqliteConnection> OpenConnectionAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var pragma = connection.CreateCommand();
        pragma.CommandText = "PRAGMA synchronous=FULL; PRAGMA busy_timeout=30000;";
        await pragma.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        return connection;
    }

    private static AuditRecord Read(SqliteDataReader r) => new(
        r.GetInt64(0),
        new AuditEvent(DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(1)), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetString(6), r.GetString(7), r.GetString(8)),
        r.GetString(9),
        r.GetString(10));
}
