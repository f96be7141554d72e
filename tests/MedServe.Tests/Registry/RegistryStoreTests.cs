using MedServe.Registry.Artifacts;
using MedServe.Registry.Store;
using MedServe.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace MedServe.Tests.Registry;

public sealed class RegistryStoreTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "medserve-registry-" + Guid.NewGuid().ToString("N"));
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 27, 9, 0, 0, TimeSpan.Zero));

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task Models_and_versions_are_recorded_with_increasing_integer_versions(string provider)
    {
        var store = await Open(provider);
        await store.CreateModelAsync("sepsis", "Sepsis risk at 6 hours");

        var first = await store.AddVersionAsync(Version("sepsis", "1.0.0"));
        _time.Advance(TimeSpan.FromMinutes(5));
        var second = await store.AddVersionAsync(Version("sepsis", "1.1.0"));

        Assert.Equal(1, first.Version);
        Assert.Equal(2, second.Version);
        Assert.Equal(_time.GetUtcNow(), second.CreatedAt);
        var listed = await store.ListVersionsAsync("sepsis");
        Assert.Equal(["1.0.0", "1.1.0"], listed.Select(v => v.SemanticVersion));
        Assert.Equal("{\"auroc\":0.9}", (await store.GetVersionAsync("sepsis", 2))!.MetricsJson);
        Assert.Equal("Sepsis risk at 6 hours", (await store.GetModelAsync("sepsis"))!.Description);
    }

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task Duplicates_and_missing_models_are_refused_with_a_reason(string provider)
    {
        var store = await Open(provider);
        await store.CreateModelAsync("sepsis", "");
        await store.AddVersionAsync(Version("sepsis", "1.0.0"));

        var model = await Assert.ThrowsAsync<RegistryException>(() => store.CreateModelAsync("sepsis", ""));
        var version = await Assert.ThrowsAsync<RegistryException>(() => store.AddVersionAsync(Version("sepsis", "1.0.0")));
        var missing = await Assert.ThrowsAsync<RegistryException>(() => store.AddVersionAsync(Version("ghost", "1.0.0")));

        Assert.Equal(RegistryError.AlreadyExists, model.Error);
        Assert.Contains("already has version 1.0.0 (version 1)", version.Message);
        Assert.Equal(RegistryError.NotFound, missing.Error);
    }

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task Concurrent_writers_get_distinct_consecutive_versions(string provider)
    {
        var store = await Open(provider);
        await store.CreateModelAsync("sepsis", "");

        var added = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => Task.Run(() => store.AddVersionAsync(Version("sepsis", $"1.{i}.0")))));

        Assert.Equal(Enumerable.Range(1, 20).Select(i => (long)i), added.Select(v => v.Version).Order());
    }

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task Two_stores_on_one_file_serialize_their_writes(string provider)
    {
        var one = await Open(provider);
        var two = await Open(provider);
        await one.CreateModelAsync("sepsis", "");

        var added = await Task.WhenAll(Enumerable.Range(0, 10).Select(i => Task.Run(() => (i % 2 == 0 ? one : two).AddVersionAsync(Version("sepsis", $"1.{i}.0")))));

        Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), added.Select(v => v.Version).Order());
    }

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task Aliases_keep_a_history_of_who_moved_them_when_and_why(string provider)
    {
        var store = await Open(provider);
        await store.CreateModelAsync("sepsis", "");
        await store.AddVersionAsync(Version("sepsis", "1.0.0"));
        await store.AddVersionAsync(Version("sepsis", "1.1.0"));

        await store.SetAliasAsync("sepsis", "champion", 1, "alice", "first release");
        _time.Advance(TimeSpan.FromDays(1));
        await store.SetAliasAsync("sepsis", "champion", 2, "bob", "better calibration");
        await store.SetAliasAsync("sepsis", "challenger", 1, "bob", "keep comparing");
        await store.SetAliasAsync("sepsis", "challenger", null, "carol", "experiment over");

        Assert.Equal(new Dictionary<string, long> { ["champion"] = 2 }, await store.GetAliasesAsync("sepsis"));
        var history = await store.GetAliasHistoryAsync("sepsis");
        Assert.Equal(4, history.Count);
        Assert.Equal(new AliasChange("sepsis", "champion", 1, 2, "bob", "better calibration", _time.GetUtcNow()), history[1]);
        Assert.Equal((1L, (long?)null, "carol"), (history[3].From!.Value, history[3].To, history[3].ChangedBy));
        var missing = await Assert.ThrowsAsync<RegistryException>(() => store.SetAliasAsync("sepsis", "champion", 9, "x", "typo"));
        Assert.Contains("has no version 9", missing.Message);
    }

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task Monitoring_specs_are_versioned_revisions_with_who_and_when(string provider)
    {
        var store = await Open(provider);
        await store.CreateModelAsync("sepsis", "");
        Assert.Empty(await store.GetMonitoringHistoryAsync("sepsis"));

        var first = await store.SetMonitoringAsync("sepsis", """{"threshold":0.3}""", "alice");
        _time.Advance(TimeSpan.FromHours(2));
        var second = await store.SetMonitoringAsync("sepsis", """{"threshold":0.4,"subgroups":["sex"]}""", "bob");

        Assert.Equal((1L, 2L), (first.Revision, second.Revision));
        var history = await store.GetMonitoringHistoryAsync("sepsis");
        Assert.Equal(["alice", "bob"], history.Select(h => h.ChangedBy));
        Assert.Equal(new MonitoringRevision("sepsis", 2, """{"threshold":0.4,"subgroups":["sex"]}""", "bob", _time.GetUtcNow()), history[^1]);
        await Assert.ThrowsAsync<RegistryException>(() => store.SetMonitoringAsync("nobody", "{}", "eve"));
    }

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task Tags_are_set_per_model_and_per_version(string provider)
    {
        var store = await Open(provider);
        await store.CreateModelAsync("sepsis", "");
        await store.AddVersionAsync(Version("sepsis", "1.0.0"));

        await store.SetTagAsync("sepsis", null, "team", "icu");
        await store.SetTagAsync("sepsis", 1, "validated", "no");
        await store.SetTagAsync("sepsis", 1, "validated", "yes");

        Assert.Equal(new Dictionary<string, string> { ["team"] = "icu" }, await store.GetTagsAsync("sepsis", null));
        Assert.Equal(new Dictionary<string, string> { ["validated"] = "yes" }, await store.GetTagsAsync("sepsis", 1));
    }

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task Reopening_keeps_the_data_and_applies_no_migration_twice(string provider)
    {
        var store = await Open(provider);
        await store.CreateModelAsync("sepsis", "kept");

        var again = await Open(provider);

        Assert.Equal(4, await again.SchemaVersionAsync());
        Assert.Equal("kept", (await again.GetModelAsync("sepsis"))!.Description);
    }

    [Fact]
    public async Task Artifacts_are_stored_once_by_content_and_checked_on_open()
    {
        var artifacts = new ArtifactStore(Path.Combine(_root, "artifacts"));
        var bytes = "an onnx file"u8.ToArray();

        var digest = await artifacts.PutAsync(new MemoryStream(bytes));
        var again = await artifacts.PutAsync(new MemoryStream(bytes));

        Assert.Equal(digest, again);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)), digest);
        Assert.Equal(Path.Combine(_root, "artifacts", "sha256", digest[..2], digest), await artifacts.OpenVerifiedAsync(digest));
        Assert.Single(Directory.GetFiles(Path.Combine(_root, "artifacts", "sha256"), "*", SearchOption.AllDirectories));

        await File.WriteAllTextAsync(artifacts.PathOf(digest), "tampered");
        var error = await Assert.ThrowsAsync<InvalidDataException>(() => artifacts.OpenVerifiedAsync(digest));
        Assert.Contains("is corrupt", error.Message);
    }

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task An_insert_checked_against_a_version_that_is_no_longer_the_newest_is_refused_in_its_transaction(string provider)
    {
        var store = await Open(provider);
        await store.CreateModelAsync("m", "");
        await store.AddVersionAsync(Version("m", "1.0.0") with { CheckedAgainst = 0 });

        // Two checks made against version 1: the first insert wins, the second must check again.
        await store.AddVersionAsync(Version("m", "1.1.0") with { CheckedAgainst = 1 });
        await Assert.ThrowsAsync<RegistryConcurrencyException>(() => store.AddVersionAsync(Version("m", "2.0.0") with { CheckedAgainst = 1 }));
        Assert.Equal(2, (await store.ListVersionsAsync("m")).Count);
        Assert.Equal(3, (await store.AddVersionAsync(Version("m", "2.0.0") with { CheckedAgainst = 2 })).Version);
    }

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task Deleting_a_model_keeps_its_alias_history(string provider)
    {
        var store = await Open(provider);
        await store.CreateModelAsync("gone", "");
        await store.AddVersionAsync(Version("gone", "1.0.0"));
        await store.SetAliasAsync("gone", "champion", 1, "alice", "first");
        await store.SetAliasAsync("gone", "champion", null, "alice", "retiring");
        await store.DeleteModelAsync("gone");

        var database = await DatabaseAsync(provider);
        Assert.Equal(2L, Convert.ToInt64(await database.ScalarAsync("SELECT COUNT(*) FROM alias_history WHERE model = 'gone';", default)));
    }

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task A_schema_newer_than_this_code_is_refused_naming_both_versions(string provider)
    {
        _ = await Open(provider);
        await (await DatabaseAsync(provider)).ScalarAsync("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0);", default);

        var error = await Assert.ThrowsAsync<RegistryException>(() => Open(provider));
        Assert.Contains("schema is at version 999", error.Message);
        Assert.Contains("knows versions up to", error.Message);
    }

    private async Task<RegistryStore> Open(string provider) => await RegistryStore.OpenAsync(await DatabaseAsync(provider), _time);

    // A new Database each time (two stores on one file each have their own writer); PostgreSQL's database is made once per test.
    private async Task<MedServe.Storage.Database> DatabaseAsync(string provider) =>
        provider == "sqlite"
            ? MedServe.Storage.Database.OpenSqlite(Path.Combine(_root, "registry.db"))
            : await MedServe.Storage.Database.OpenPostgresAsync(_postgres ??= await TestPostgres.CreateDatabaseAsync(), _time);

    private string? _postgres;

    private static NewModelVersion Version(string model, string semver) =>
        new(model, semver, new string('a', 64), "file:///models/x.onnx", "{\"inputs\":[],\"outputs\":[]}", "{}", "{}", "{\"auroc\":0.9}", "tester");
}
