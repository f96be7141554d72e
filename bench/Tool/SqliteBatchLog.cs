using System.Text;
using Microsoft.Data.Sqlite;

namespace MedServe.Bench;

/// <summary>
/// The SQLite candidate for the journal's write path, measured beside it (bench only): one writer
/// takes every waiting record and stores them with one INSERT statement of many rows in one
/// transaction (WAL, synchronous=FULL), then completes their appends. Hashing is left out, so it
/// is measured at its best.
/// </summary>
internal sealed class SqliteBatchLog : IAsyncDisposable
{
    private const int MaxRowsPerStatement = 500;
    private readonly SqliteConnection _connection;
    private readonly object _gate = new();
    private readonly Thread _thread;
    private List<(byte[] Body, TaskCompletionSource Done)> _pending = [];
    private bool _stopping;

    private SqliteBatchLog(SqliteConnection connection)
    {
        _connection = connection;
        _thread = new Thread(Loop) { IsBackground = true };
        _thread.Start();
    }

    public long Commits { get; private set; }

    public static SqliteBatchLog Open(string path)
    {
        var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY, body BLOB NOT NULL);";
        command.ExecuteNonQuery();
        return new SqliteBatchLog(connection);
    }

    public Task AppendAsync(byte[] body)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            _pending.Add((body, done));
            if (_pending.Count == 1)
            {
                Monitor.Pulse(_gate);
            }
        }

        return done.Task;
    }

    private void Loop()
    {
        while (true)
        {
            List<(byte[] Body, TaskCompletionSource Done)> batch;
            lock (_gate)
            {
                while (_pending.Count == 0 && !_stopping)
                {
                    Monitor.Wait(_gate);
                }

                if (_pending.Count == 0)
                {
                    return;
                }

                batch = _pending;
                _pending = [];
            }

            using (var transaction = _connection.BeginTransaction())
            {
                foreach (var chunk in batch.Chunk(MaxRowsPerStatement))
                {
                    using var insert = _connection.CreateCommand();
                    insert.Transaction = transaction;
                    var sql = new StringBuilder("INSERT INTO records (body) VALUES ");
                    for (var i = 0; i < chunk.Length; i++)
                    {
                        sql.Append(i == 0 ? "" : ",").Append("($b").Append(i).Append(')');
                        insert.Parameters.AddWithValue("$b" + i, chunk[i].Body);
                    }

                    insert.CommandText = sql.ToString();
                    insert.ExecuteNonQuery();
                }

                transaction.Commit();
            }

            Commits++;
            foreach (var (_, done) in batch)
            {
                done.TrySetResult();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            _stopping = true;
            Monitor.Pulse(_gate);
        }

        await Task.Run(_thread.Join);
        await _connection.DisposeAsync();
    }
}
