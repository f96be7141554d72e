using MedServe.Registry.Store;
using Microsoft.Extensions.Time.Testing;

namespace MedServe.Tests.Registry;

public sealed class VersionDeletionTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "medserve-deletion-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task A_version_an_alias_names_cannot_be_deleted()
    {
        var store = await RegistryStore.OpenAsync(Path.Combine(_root, "registry.db"), new FakeTimeProvider());
        await store.CreateModelAsync("sepsis", "");
        await store.AddVersionAsync(Version("1.0.0"));
        await store.AddVersionAsync(Version("1.1.0"));
        await store.SetAliasAsync("sepsis", "champion", 2, "alice", "");
        await store.SetTagAsync("sepsis", 1, "validated", "yes");

        var refused = await Assert.ThrowsAsync<RegistryException>(() => store.DeleteVersionAsync("sepsis", 2));
        await store.DeleteVersionAsync("sepsis", 1);
        var missing = await Assert.ThrowsAsync<RegistryException>(() => store.DeleteVersionAsync("sepsis", 1));

        Assert.Contains("named by the alias 'champion'", refused.Message);
        Assert.Equal([2L], (await store.ListVersionsAsync("sepsis")).Select(v => v.Version));
        Assert.Empty(await store.GetTagsAsync("sepsis", 1));
        Assert.Equal(RegistryError.NotFound, missing.Error);
    }

    private static NewModelVersion Version(string semver) =>
        new("sepsis", semver, new string('b', 64), "file:///m.onnx", "{\"inputs\":[],\"outputs\":[]}", "{}", "{}", "{}", "tester");
}
