using MedServe.Alerts;
using MedServe.Drift;
using MedServe.Experiments;
using MedServe.Storage;
using MedServe.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace MedServe.IntegrationTests;

/// <summary>
/// The experiment, alert and drift-reference stores, each test run against SQLite and against a
/// real PostgreSQL: what one writes, the other reads back the same, and their migrations run once.
/// </summary>
public sealed class SharedStoreTests : IAsyncDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "medserve-stores-" + Guid.NewGuid().ToString("N"));
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 3, 8, 0, 0, TimeSpan.Zero));
    private readonly List<Database> _databases = [];

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task Experiments_keep_their_spec_state_and_ordered_history(string provider)
    {
        var database = await OpenAsync(provider);
        var store = await ExperimentStore.OpenAsync(database, _time);
        var spec = new ExperimentSpec("sepsis-ab", "sepsis", "patient", [new Arm("control", 1, null, 0.9), new Arm("candidate", 2, null, 0.1)], [], null, new Guardrails());
        var created = _time.GetUtcNow();
        await store.SaveAsync(new StoredExperiment(spec, new ExperimentState(ExperimentState.Running, 0, created, "created", created, "alice")), "created", "by alice", created);
        _time.Advance(TimeSpan.FromMinutes(3));
        await store.SaveAsync(new StoredExperiment(spec, new ExperimentState(ExperimentState.Paused, 0, created, "night", created, "alice")), "paused", "night", _time.GetUtcNow());

        var listed = Assert.Single(await store.ListAsync());
        Assert.Equal(ExperimentState.Paused, listed.State.Status);
        Assert.Equal(["control", "candidate"], listed.Spec.Arms.Select(a => a.Name));
        Assert.Equal(0.1, listed.Spec.Arms[1].Weight);
        var history = await store.HistoryAsync("sepsis-ab");
        Assert.Equal(["created", "paused"], history.Select(h => h.Event));
        Assert.True(history[1].Sequence > history[0].Sequence);
        Assert.Equal(created + TimeSpan.FromMinutes(3), history[1].At);

        // Reopening applies no migration twice and keeps everything.
        var again = await ExperimentStore.OpenAsync(database, _time);
        Assert.Equal(2, (await again.HistoryAsync("sepsis-ab")).Count);
        Assert.Equal(1, await database.SchemaVersionAsync("experiments_migrations"));
    }

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task Alert_rules_states_and_a_bounded_event_log_round_trip(string provider)
    {
        var store = await AlertStore.OpenAsync(await OpenAsync(provider), _time);
        await store.SaveRuleAsync(new AlertRule("auroc-low", "sepsis", "auroc", "below", 0.8, TimeSpan.FromHours(1), 50, TimeSpan.FromMinutes(10), []));
        await store.SaveRuleAsync(new AlertRule("auroc-low", "sepsis", "auroc", "below", 0.75, TimeSpan.FromHours(1), 50, TimeSpan.FromMinutes(10), []));
        await store.SetStateAsync(new AlertState("auroc-low", "firing", _time.GetUtcNow(), 0.7123456789012, 120));
        await store.SetStateAsync(new AlertState("other", "ok", _time.GetUtcNow(), double.NaN, 0));
        for (var i = 0; i < 5; i++)
        {
            await store.AppendEventAsync(new AlertEvent(0, "auroc-low", "sepsis", "auroc", i % 2 == 0 ? "firing" : "ok", 0.7 + i / 100.0, 0.75, "below", 100 + i, _time.GetUtcNow()), keep: 3);
        }

        Assert.Contains("0.75", Assert.Single(await store.RulesAsync()));
        var states = await store.StatesAsync();
        Assert.Equal(0.7123456789012, states["auroc-low"].LastValue);
        Assert.Equal(120, states["auroc-low"].LastSamples);
        Assert.Null(states["other"].LastValue);
        var events = await store.EventsAsync(10);
        Assert.Equal([5L, 4L, 3L], events.Select(e => e.Sequence));
        Assert.Equal(104, events[0].Samples);
        Assert.True(await store.DeleteRuleAsync("auroc-low"));
        Assert.False(await store.DeleteRuleAsync("auroc-low"));
        Assert.False((await store.StatesAsync()).ContainsKey("auroc-low"));
    }

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task Drift_references_are_revisions_and_a_version_one_wins_over_the_models(string provider)
    {
        var store = await DriftReferenceStore.OpenAsync(await OpenAsync(provider), _time);
        var model = await store.SaveAsync("sepsis", "", "training set", "alice", "{\"a\":1}");
        _time.Advance(TimeSpan.FromSeconds(1));
        var first = await store.SaveAsync("sepsis", "2", "validation", "bob", "{\"a\":2}");
        var second = await store.SaveAsync("sepsis", "2", "validation, rerun", "bob", "{\"a\":3}");

        Assert.Equal((1L, 1L, 2L), (model.Revision, first.Revision, second.Revision));
        Assert.Equal("{\"a\":3}", (await store.FindAsync("sepsis", "2"))!.Summary);
        Assert.Equal("{\"a\":1}", (await store.FindAsync("sepsis", "7"))!.Summary);
        Assert.Equal(_time.GetUtcNow(), (await store.FindAsync("sepsis", "2"))!.CreatedAt);
        Assert.Null(await store.FindAsync("other", null));
    }

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task Concurrent_writers_of_one_sequence_all_land_with_distinct_numbers(string provider)
    {
        var database = await OpenAsync(provider);
        var store = await DriftReferenceStore.OpenAsync(database, _time);

        // PostgreSQL: serializable transactions that collide are retried, none is lost or doubled.
        var saved = await Task.WhenAll(Enumerable.Range(0, 16).Select(i => Task.Run(() => store.SaveAsync("sepsis", "1", $"run {i}", "ci", "{}"))));

        Assert.Equal(Enumerable.Range(1, 16).Select(i => (long)i), saved.Select(s => s.Revision).Order());
    }

    private async Task<Database> OpenAsync(string provider)
    {
        var database = await TestPostgres.OpenAsync(provider, _root);
        _databases.Add(database);
        return database;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var database in _databases)
        {
            await database.DisposeAsync();
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }
}
