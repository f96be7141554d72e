using MedServe.Compliance.Journal;
using MedServe.Compliance.Predictions;
using MedServe.Storage;
using MedServe.Tests.Support;

namespace MedServe.Tests.Predictions;

/// <summary>
/// The prediction log's projection, SQLite and PostgreSQL alike: rows by model, version, time and
/// patient; re-applying is harmless; the later outcome wins; the watermark moves with the rows.
/// PostgreSQL also keeps two replicas' journals apart under one database.
/// </summary>
public sealed class PredictionStoreTests : IAsyncDisposable
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 3, 8, 0, 0, TimeSpan.Zero);
    private readonly string _root = Path.Combine(Path.GetTempPath(), "medserve-predictions-" + Guid.NewGuid().ToString("N"));
    private readonly List<IAsyncDisposable> _owned = [];
    private string? _postgres;

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task Predictions_are_found_by_id_patient_and_window_and_reapplying_changes_nothing(string provider)
    {
        var store = await OpenAsync(provider, "a");
        var records = new[] { Inference(1, "risk", "1", "req-1", "c-1", "p-1", 0), Action(2), Inference(3, "risk", "2", "req-3", "", "p-1", 10), Inference(4, "sepsis", "1", "req-4", "c-1", "p-2", 20) };
        await store.ApplyAsync(records, 4);
        await store.ApplyAsync(records, 4);

        Assert.Equal(4, await store.ProjectedThroughAsync());
        var all = await store.QueryAsync(new PredictionQuery("risk", null, DateTimeOffset.MinValue, DateTimeOffset.MaxValue, null, 0, 100));
        Assert.Equal(["req-1", "req-3"], all.Select(p => p.RequestId));
        Assert.Equal([1, 2, 3, 1], (await store.FindAsync("req-1"))!.Payload);
        Assert.Equal(T0, all[0].Time);
        Assert.Equal(1234, all[0].LatencyMicroseconds);
        Assert.Single(await store.QueryAsync(new PredictionQuery("risk", "2", DateTimeOffset.MinValue, DateTimeOffset.MaxValue, null, 0, 100)));
        Assert.Single(await store.QueryAsync(new PredictionQuery("risk", null, T0.AddSeconds(5), T0.AddSeconds(11), null, 0, 100)));
        Assert.Single(await store.QueryAsync(new PredictionQuery("risk", null, DateTimeOffset.MinValue, DateTimeOffset.MaxValue, null, all[0].Sequence, 100)));

        // A client id reused by two requests finds the newest; a server request id wins over a client id.
        Assert.Equal("req-4", (await store.FindAsync("c-1"))!.RequestId);
        Assert.Equal("req-3", (await store.FindLatestForPatientAsync("risk", "p-1", T0.AddHours(1), T0.AddHours(-1)))!.RequestId);
        Assert.Null(await store.FindLatestForPatientAsync("risk", "p-1", T0.AddSeconds(5), T0.AddSeconds(1)));
    }

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task The_later_outcome_of_a_prediction_wins_and_a_replay_changes_nothing(string provider)
    {
        var store = await OpenAsync(provider, "a");
        await store.ApplyAsync([Inference(1, "risk", "1", "req-1", "", "p-1", 0)], 1);
        var prediction = (await store.FindAsync("req-1"))!;

        await store.ApplyAsync([], [(2, prediction.Sequence, [7], T0.AddHours(1))], 2);
        await store.ApplyAsync([], [(3, prediction.Sequence, [8], T0.AddHours(2))], 3);
        await store.ApplyAsync([], [(2, prediction.Sequence, [7], T0.AddHours(1))], 3);

        var outcome = (await store.GetOutcomeAsync(prediction.Sequence))!;
        Assert.Equal([8], outcome.Envelope);
        Assert.Equal(2, outcome.Revisions);
        Assert.Equal(T0.AddHours(2), outcome.RecordedAt);
        var joined = Assert.Single(await store.QueryWithOutcomesAsync("risk", null, DateTimeOffset.MinValue, DateTimeOffset.MaxValue));
        Assert.Equal("req-1", joined.Prediction.RequestId);

        await store.ResetAsync();
        Assert.Equal(0, await store.ProjectedThroughAsync());
        Assert.Null(await store.FindAsync("req-1"));
    }

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task Pruning_removes_predictions_before_the_horizon_with_their_outcomes_in_batches_and_keeps_the_rest(string provider)
    {
        var store = await OpenAsync(provider, "a");

        // More old rows than one batch, so the loop runs twice; one old and one kept row have outcomes.
        var old = SqlitePredictionStore.PruneBatch + 3;
        var records = Enumerable.Range(1, old).Select(i => Inference(i, "risk", "1", $"old-{i}", "", "p-1", i % 60)).ToList();
        records.Add(Inference(old + 1, "risk", "1", "kept", "", "p-1", 3600));
        await store.ApplyAsync(records, old + 1);
        var oldOne = (await store.FindAsync("old-1"))!;
        var kept = (await store.FindAsync("kept"))!;
        await store.ApplyAsync([], [(old + 2, oldOne.Sequence, [1], T0.AddHours(2)), (old + 3, kept.Sequence, [2], T0.AddHours(2))], old + 3);

        Assert.Equal(old, await store.PruneAsync(T0.AddMinutes(30)));

        Assert.Equal(["kept"], (await store.QueryAsync(new PredictionQuery("risk", null, DateTimeOffset.MinValue, DateTimeOffset.MaxValue, null, 0, 100))).Select(p => p.RequestId));
        Assert.Null(await store.GetOutcomeAsync(oldOne.Sequence));
        Assert.Equal([2], (await store.GetOutcomeAsync(kept.Sequence))!.Envelope);
        Assert.Equal(old + 3, await store.ProjectedThroughAsync()); // the watermark stays: the journal is not replayed
        Assert.Equal(0, await store.PruneAsync(T0.AddMinutes(30)));
    }

    [PostgresFact]
    public async Task Two_replicas_project_their_own_journals_into_one_database_without_colliding()
    {
        var a = await OpenAsync("postgres", "replica-a");
        var b = await OpenAsync("postgres", "replica-b");
        var aAgain = await OpenAsync("postgres", "replica-a");

        // Both journals start at sequence 1: the rows stay apart, each watermark is its replica's.
        await a.ApplyAsync([Inference(1, "risk", "1", "a-1", "", "p-1", 0)], 1);
        await b.ApplyAsync([Inference(1, "risk", "1", "b-1", "", "p-1", 5), Inference(2, "risk", "1", "b-2", "", "p-2", 6)], 2);

        Assert.Equal(1, await a.ProjectedThroughAsync());
        Assert.Equal(2, await b.ProjectedThroughAsync());
        Assert.Equal(((PostgresPredictionStore)a).SequenceBase, ((PostgresPredictionStore)aAgain).SequenceBase);
        Assert.NotEqual(((PostgresPredictionStore)a).SequenceBase, ((PostgresPredictionStore)b).SequenceBase);
        var all = await a.QueryAsync(new PredictionQuery("risk", null, DateTimeOffset.MinValue, DateTimeOffset.MaxValue, null, 0, 100));
        Assert.Equal(3, all.Count);
        Assert.Equal(3, all.Select(p => p.Sequence).Distinct().Count());

        // An outcome recorded on B (in B's journal) for A's prediction lands on A's row. B's reset forgets what
        // came from B's journal (its rows and that outcome), which B's replay brings back; A's rows stay.
        var ofA = (await b.FindAsync("a-1"))!;
        await b.ApplyAsync([], [(3, ofA.Sequence, [9], T0.AddHours(1))], 3);
        Assert.Equal([9], (await a.GetOutcomeAsync(ofA.Sequence))!.Envelope);
        await b.ResetAsync();
        Assert.Null(await a.GetOutcomeAsync(ofA.Sequence));
        Assert.Equal(["a-1"], (await a.QueryAsync(new PredictionQuery("risk", null, DateTimeOffset.MinValue, DateTimeOffset.MaxValue, null, 0, 100))).Select(p => p.RequestId));
        await b.ApplyAsync([Inference(1, "risk", "1", "b-1", "", "p-1", 5), Inference(2, "risk", "1", "b-2", "", "p-2", 6)], [(3, ofA.Sequence, [9], T0.AddHours(1))], 3);
        Assert.Equal([9], (await a.GetOutcomeAsync(ofA.Sequence))!.Envelope);
        Assert.Equal(3, (await a.QueryAsync(new PredictionQuery("risk", null, DateTimeOffset.MinValue, DateTimeOffset.MaxValue, null, 0, 100))).Count);
    }

    private async Task<IPredictionStore> OpenAsync(string provider, string replica)
    {
        IPredictionStore store;
        if (provider == "sqlite")
        {
            store = await SqlitePredictionStore.OpenAsync(Path.Combine(_root, "predictions.db"));
        }
        else
        {
            var database = await Database.OpenPostgresAsync(_postgres ??= await TestPostgres.CreateDatabaseAsync(), TimeProvider.System);
            _owned.Add(database);
            store = await PostgresPredictionStore.OpenAsync(database, replica);
        }

        _owned.Add(store);
        return store;
    }

    private static JournalRecord Inference(long sequence, string model, string version, string requestId, string clientId, string patient, int seconds) =>
        new(sequence, new JournalEntry(T0.AddSeconds(seconds), JournalKind.Inference, "key:ward", "infer", model, "OK", requestId, "127.0.0.1", patient)
        {
            Model = model,
            Version = version,
            ClientRequestId = clientId,
            LatencyMicroseconds = 1234,
            Payload = new byte[] { 1, 2, 3, (byte)sequence },
        }, [], []);

    private static JournalRecord Action(long sequence) =>
        new(sequence, new JournalEntry(T0, JournalKind.Action, "admin", "load", "risk", "OK", "req-x", "127.0.0.1", ""), [], []);

    public async ValueTask DisposeAsync()
    {
        foreach (var owned in Enumerable.Reverse(_owned))
        {
            await owned.DisposeAsync();
        }

        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }
}
