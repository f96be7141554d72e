using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace MedServe.Alerts;

/// <summary>A rule's standing: firing or ok, since when, and the last figure it saw.</summary>
public sealed record AlertState(string Rule, string State, DateTimeOffset Since, double? LastValue, long LastSamples);

/// <summary>Alert rules, their states and their events (the scale-out issue shares this across replicas).</summary>
public interface IAlertStore
{
    Task SaveRuleAsync(AlertRule rule, CancellationToken cancellationToken = default);

    Task<bool> DeleteRuleAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Every rule as stored (its JSON), for the evaluator to read against today's webhooks.</summary>
    Task<IReadOnlyList<string>> RulesAsync(CancellationToken cancellationToken = default);

    Task<IReadOnlyDictionary<string, AlertState>> StatesAsync(CancellationToken cancellationToken = default);

    Task SetStateAsync(AlertState state, CancellationToken cancellationToken = default);

    /// <summary>Records an event and gives it its sequence number; keeps the latest <paramref name="keep"/>.</summary>
    Task<AlertEvent> AppendEventAsync(AlertEvent e, int keep, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<AlertEvent>> EventsAsync(int limit, CancellationToken cancellationToken = default);
}

/// <summary>The embedded default: alerts.db in the data dir.</summary>
public sealed class SqliteAlertStore : IAlertStore
{
    private readonly string _connectionString;

    private SqliteAlertStore(string path) => _connectionString = new SqliteConnectionStringBuilder { DataSource = path, Pooling = true, DefaultTimeout = 30 }.ToString();

    public static SqliteAlertStore Open(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var store = new SqliteAlertStore(path);
        store.Execute("""
            PRAGMA journal_mode = WAL;
            CREATE TABLE IF NOT EXISTS alert_rules (name TEXT PRIMARY KEY, rule TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS alert_states (rule TEXT PRIMARY KEY, state TEXT NOT NULL, since_us INTEGER NOT NULL, last_value REAL, last_samples INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS alert_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL);
            """);
        return store;
    }

    public Task SaveRuleAsync(AlertRule rule, CancellationToken cancellationToken = default)
    {
        Execute("INSERT INTO alert_rules (name, rule) VALUES ($n, $r) ON CONFLICT (name) DO UPDATE SET rule = excluded.rule;", ("$n", rule.Name), ("$r", Http.V2.ApiResponses.ObjectJson(rule.Write)));
        return Task.CompletedTask;
    }

    public Task<bool> DeleteRuleAsync(string name, CancellationToken cancellationToken = default)
    {
        var deleted = Execute("DELETE FROM alert_rules WHERE name = $n;", ("$n", name)) > 0;
        Execute("DELETE FROM alert_states WHERE rule = $n;", ("$n", name));
        return Task.FromResult(deleted);
    }

    public Task<IReadOnlyList<string>> RulesAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<string>>(Query("SELECT rule FROM alert_rules ORDER BY name;", r => r.GetString(0)));

    public Task<IReadOnlyDictionary<string, AlertState>> StatesAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyDictionary<string, AlertState>>(Query("SELECT rule, state, since_us, last_value, last_samples FROM alert_states;",
            r => new AlertState(r.GetString(0), r.GetString(1), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(2) / 1000), r.IsDBNull(3) ? null : r.GetDouble(3), r.GetInt64(4)))
            .ToDictionary(s => s.Rule, StringComparer.Ordinal));

    public Task SetStateAsync(AlertState state, CancellationToken cancellationToken = default)
    {
        Execute("""
            INSERT INTO alert_states (rule, state, since_us, last_value, last_samples) VALUES ($r, $s, $t, $v, $n)
            ON CONFLICT (rule) DO UPDATE SET state = excluded.state, since_us = excluded.since_us, last_value = excluded.last_value, last_samples = excluded.last_samples;
            """, ("$r", state.Rule), ("$s", state.State), ("$t", state.Since.ToUnixTimeMilliseconds() * 1000), ("$v", state.LastValue is { } v && double.IsFinite(v) ? v : null), ("$n", state.LastSamples));
        return Task.CompletedTask;
    }

    public Task<AlertEvent> AppendEventAsync(AlertEvent e, int keep, CancellationToken cancellationToken = default)
    {
        using var connection = Open();
        using var transaction = connection.BeginTransaction();
        using var insert = connection.CreateCommand();
        insert.CommandText = "INSERT INTO alert_events (event) VALUES ('') RETURNING seq;";
        var sequence = Convert.ToInt64(insert.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        var stored = e with { Sequence = sequence };
        using var update = connection.CreateCommand();
        update.CommandText = "UPDATE alert_events SET event = $e WHERE seq = $s; DELETE FROM alert_events WHERE seq <= $s - $keep;";
        update.Parameters.AddWithValue("$e", Http.V2.ApiResponses.ObjectJson(stored.Write));
        update.Parameters.AddWithValue("$s", sequence);
        update.Parameters.AddWithValue("$keep", keep);
        update.ExecuteNonQuery();
        transaction.Commit();
        return Task.FromResult(stored);
    }

    public Task<IReadOnlyList<AlertEvent>> EventsAsync(int limit, CancellationToken cancellationToken = default) =>
        Task.FromResult<IReadOnlyList<AlertEvent>>(Query($"SELECT event FROM alert_events ORDER BY seq DESC LIMIT {Math.Clamp(limit, 1, 10_000)};", r => ReadEvent(r.GetString(0))));

    private static AlertEvent ReadEvent(string json)
    {
        using var document = JsonDocument.Parse(json);
        var e = document.RootElement;
        var comparison = e.TryGetProperty("above", out _) ? "above" : "below";
        return new AlertEvent(e.GetProperty("sequence").GetInt64(), e.GetProperty("rule").GetString()!, e.GetProperty("model").GetString()!, e.GetProperty("metric").GetString()!,
            e.GetProperty("state").GetString()!, e.TryGetProperty("value", out var v) ? v.GetDouble() : null, e.GetProperty(comparison).GetDouble(), comparison,
            e.GetProperty("samples").GetInt64(), DateTimeOffset.Parse(e.GetProperty("at").GetString()!, System.Globalization.CultureInfo.InvariantCulture));
    }

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        return connection;
    }

    private int Execute(string sql, params (string Name, object? Value)[] parameters)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return command.ExecuteNonQuery();
    }

    private List<T> Query<T>(string sql, Func<SqliteDataReader, T> read)
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<T>();
        while (reader.Read())
        {
            rows.Add(read(reader));
        }

        return rows;
    }
}
