using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace MedServe.Experiments;

/// <summary>Where an experiment stands: running, paused, stopped, rolled_back, completed (rollout at 100%) or promoted; its rollout step; why it last changed.</summary>
public sealed record ExperimentState(string Status, int Step, DateTimeOffset StepStartedAt, string Reason, DateTimeOffset CreatedAt, string CreatedBy)
{
    public const string Running = "running";
    public const string Paused = "paused";
    public const string Stopped = "stopped";
    public const string RolledBack = "rolled_back";
    public const string Completed = "completed";
    public const string Promoted = "promoted";

    /// <summary>Still routing traffic: running, or a finished rollout (completed) until it is promoted or stopped.</summary>
    public bool Routes => Status is Running or Completed or RolledBack;

    /// <summary>Holds its model: at most one such experiment per model.</summary>
    public bool Active => Status is Running or Paused or Completed or RolledBack;
}

public sealed record StoredExperiment(ExperimentSpec Spec, ExperimentState State);

public sealed record ExperimentEvent(long Sequence, string Experiment, DateTimeOffset At, string Event, string Detail);

/// <summary>Experiments' intent and history (the scale-out issue shares them across replicas).</summary>
public interface IExperimentStore
{
    Task<IReadOnlyList<StoredExperiment>> ListAsync(CancellationToken cancellationToken = default);

    Task SaveAsync(StoredExperiment experiment, string @event, string detail, DateTimeOffset at, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<ExperimentEvent>> HistoryAsync(string name, CancellationToken cancellationToken = default);
}

public sealed class SqliteExperimentStore : IExperimentStore
{
    private readonly string _connectionString;

    private SqliteExperimentStore(string path) => _connectionString = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true, DefaultTimeout = 30 }.ToString();

    public static SqliteExperimentStore Open(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var store = new SqliteExperimentStore(path);
        using var connection = store.Connect();
        using var command = connection.CreateCommand();
        command.CommandText = """
            PRAGMA journal_mode = WAL;
            CREATE TABLE IF NOT EXISTS experiments (name TEXT PRIMARY KEY, spec TEXT NOT NULL, state TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS experiment_history (seq INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, at_us INTEGER NOT NULL, event TEXT NOT NULL, detail TEXT NOT NULL);
            """;
        command.ExecuteNonQuery();
        return store;
    }

    public Task<IReadOnlyList<StoredExperiment>> ListAsync(CancellationToken cancellationToken = default)
    {
        using var connection = Connect();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT spec, state FROM experiments ORDER BY name;";
        using var reader = command.ExecuteReader();
        var list = new List<StoredExperiment>();
        while (reader.Read())
        {
            using var spec = JsonDocument.Parse(reader.GetString(0));
            list.Add(new StoredExperiment(ExperimentSpec.Parse(spec.RootElement), JsonSerializer.Deserialize<ExperimentState>(reader.GetString(1))!));
        }

        return Task.FromResult<IReadOnlyList<StoredExperiment>>(list);
    }

    public Task SaveAsync(StoredExperiment experiment, string @event, string detail, DateTimeOffset at, CancellationToken cancellationToken = default)
    {
        using var connection = Connect();
        using var transaction = connection.BeginTransaction();
        using var save = connection.CreateCommand();
        save.CommandText = """
            INSERT INTO experiments (name, spec, state) VALUES ($n, $spec, $state) ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, state = excluded.state;
            INSERT INTO experiment_history (name, at_us, event, detail) VALUES ($n, $t, $e, $d);
            """;
        save.Parameters.AddWithValue("$n", experiment.Spec.Name);
        save.Parameters.AddWithValue("$spec", Http.V2.ApiResponses.ObjectJson(experiment.Spec.Write));
        save.Parameters.AddWithValue("$state", JsonSerializer.Serialize(experiment.State));
        save.Parameters.AddWithValue("$t", at.ToUnixTimeMilliseconds() * 1000);
        save.Parameters.AddWithValue("$e", @event);
        save.Parameters.AddWithValue("$d", detail);
        save.ExecuteNonQuery();
        transaction.Commit();
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<ExperimentEvent>> HistoryAsync(string name, CancellationToken cancellationToken = default)
    {
        using var connection = Connect();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT seq, name, at_us, event, detail FROM experiment_history WHERE name = $n ORDER BY seq;";
        command.Parameters.AddWithValue("$n", name);
        using var reader = command.ExecuteReader();
        var list = new List<ExperimentEvent>();
        while (reader.Read())
        {
            list.Add(new ExperimentEvent(reader.GetInt64(0), reader.GetString(1), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(2) / 1000), reader.GetString(3), reader.GetString(4)));
        }

        return Task.FromResult<IReadOnlyList<ExperimentEvent>>(list);
    }

    private SqliteConnection Connect()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        return connection;
    }
}
