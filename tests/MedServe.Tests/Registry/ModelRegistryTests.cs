using MedServe.Onnx;
using MedServe.Onnx.Graph;
using MedServe.Registry;
using MedServe.Registry.Artifacts;
using MedServe.Registry.Store;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace MedServe.Tests.Registry;

/// <summary>Registration end to end on real ONNX files: artifact by content, signature read by ONNX Runtime, semantic version checked.</summary>
public sealed class ModelRegistryTests : IDisposable
{
    private static readonly string Risk = Path.Combine(AppContext.BaseDirectory, "samples", "risk.onnx");
    private readonly string _root = Path.Combine(Path.GetTempPath(), "medserve-modelregistry-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task A_version_is_stored_by_content_with_the_signature_onnx_runtime_reads()
    {
        var registry = await Open();
        await registry.Store.CreateModelAsync("risk", "");

        var first = await Register(registry, "1.0.0", Risk);
        var patch = await Register(registry, "1.0.1", Risk);

        Assert.Equal(1, first.Version);
        Assert.Equal(2, patch.Version);
        Assert.Equal(first.ArtifactSha256, patch.ArtifactSha256);
        var signature = ModelRegistry.ReadSignature(first.SignatureJson);
        Assert.Equal("input", signature.Inputs.Single().Name);
        Assert.Equal([-1L, 30L], signature.Inputs.Single().Dims);
        Assert.Equal("output", signature.Outputs.Single().Name);
        Assert.Equal("{}", first.LineageJson);
        Assert.Contains("\"parent_version\":1", patch.LineageJson);
        Assert.Contains("\"parent_semantic_version\":\"1.0.0\"", patch.LineageJson);
    }

    [Fact]
    public async Task A_breaking_change_with_a_minor_bump_is_refused_naming_the_change_and_the_right_version()
    {
        var registry = await Open();
        await registry.Store.CreateModelAsync("risk", "");
        await Register(registry, "1.0.0", Risk);
        var renamed = Path.Combine(_root, "renamed.onnx");
        OnnxGraphEditor.Edit(Risk, renamed, graph => graph.RenameOutput("output", "risk_score"));

        var error = await Assert.ThrowsAsync<RegistryException>(() => Register(registry, "1.1.0", renamed));
        var accepted = await Register(registry, "2.0.0", renamed);

        Assert.Equal(RegistryError.Invalid, error.Error);
        Assert.Contains("output 'output' was removed or renamed", error.Message);
        Assert.Contains("needs a major version, 2.0.0", error.Message);
        Assert.Equal(2, accepted.Version);
    }

    [Fact]
    public async Task A_file_that_is_not_a_model_is_refused()
    {
        var registry = await Open();
        await registry.Store.CreateModelAsync("risk", "");
        var junk = Path.Combine(_root, "junk.onnx");
        await File.WriteAllTextAsync(junk, "not a model");

        var error = await Assert.ThrowsAsync<RegistryException>(() => Register(registry, "1.0.0", junk));

        Assert.Contains("not a model MedServe can serve", error.Message);
        Assert.Empty(await registry.Store.ListVersionsAsync("risk"));
    }

    [Fact]
    public async Task A_failed_registration_leaves_no_bytes_behind()
    {
        var registry = await Open();
        await registry.Store.CreateModelAsync("risk", "");
        await Register(registry, "1.0.0", Risk);
        var secret = "PSEUDONYM-SECRET-0123456789"u8.ToArray();

        // Not a model, a model whose external data leaves its folder, and a valid model refused by the version check.
        await Assert.ThrowsAsync<RegistryException>(() => registry.RegisterAsync(new VersionRegistration("risk", "", "upload", "t"), new MemoryStream(secret)));
        await Assert.ThrowsAsync<RegistryException>(() => registry.RegisterAsync(
            new VersionRegistration("risk", "", "upload", "t"), new MemoryStream(MedServe.Testing.HostileModels.ExternalWeights("../../../../registry.db"))));
        var breaking = await Assert.ThrowsAsync<RegistryException>(() => registry.RegisterAsync(
            new VersionRegistration("risk", "1.0.1", "upload", "t"), new MemoryStream(MedServe.Testing.HostileModels.WideDimension(7))));

        Assert.DoesNotContain(_root, breaking.Message);
        var files = Directory.EnumerateFiles(Path.Combine(_root, "artifacts"), "*", SearchOption.AllDirectories).ToList();
        Assert.Single(files); // risk.onnx, stored once
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_root, "artifacts", "staging")));
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Artifacts_are_readable_by_the_server_user_alone()
    {
        var registry = await Open();
        await registry.Store.CreateModelAsync("risk", "");
        var record = await Register(registry, "1.0.0", Risk);

        var artifacts = new ArtifactStore(Path.Combine(_root, "artifacts"));
        var file = artifacts.PathOf(record.ArtifactSha256);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        for (var folder = Path.GetDirectoryName(file)!; folder.Length >= artifacts.Root.Length; folder = Path.GetDirectoryName(folder)!)
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(folder));
        }
    }

    [Fact]
    public async Task Concurrent_registrations_are_each_checked_against_the_one_before_them()
    {
        var registry = await Open();
        await registry.Store.CreateModelAsync("risk", "");

        // Each picks its semantic version from the highest one so far; run together, they must still form one line.
        var records = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => Register(registry, "", Risk))));

        var ordered = records.OrderBy(r => r.Version).ToList();
        Assert.Equal(Enumerable.Range(0, 8).Select(i => $"1.0.{i}"), ordered.Select(r => r.SemanticVersion));
        for (var i = 1; i < ordered.Count; i++)
        {
            Assert.Contains($"\"parent_version\":{ordered[i - 1].Version}", ordered[i].LineageJson);
        }
    }

    private async Task<ModelRegistry> Open()
    {
        Directory.CreateDirectory(_root);
        var store = await RegistryStore.OpenAsync(Path.Combine(_root, "registry.db"), new FakeTimeProvider());
        var backend = new OnnxBackend(Options.Create(new OnnxOptions()), NullLogger<OnnxBackend>.Instance);
        return new ModelRegistry(store, new ArtifactStore(Path.Combine(_root, "artifacts")), backend);
    }

    private static async Task<ModelVersionRecord> Register(ModelRegistry registry, string version, string file)
    {
        await using var stream = File.OpenRead(file);
        return await registry.RegisterAsync(new VersionRegistration("risk", version, "file://" + file, "tester"), stream);
    }
}
