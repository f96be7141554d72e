using System.Diagnostics;
using System.Security.Cryptography;
using Azure.Storage.Blobs;
using MedServe.Onnx;
using MedServe.Registry;
using MedServe.Registry.Artifacts;
using MedServe.Registry.Store;
using MedServe.Storage;
using MedServe.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace MedServe.Tests.Registry;

/// <summary>
/// The artifact store as a per-replica cache of an object store: the Azure Blob tests run on a real
/// Azurite (two caches in separate folders stand for two replicas); the ordering and option tests need none.
/// </summary>
public sealed class ArtifactObjectStoreTests(AzuriteFixture azurite, Xunit.Abstractions.ITestOutputHelper output) : IClassFixture<AzuriteFixture>, IDisposable
{
    private static readonly string Risk = Path.Combine(AppContext.BaseDirectory, "samples", "risk.onnx");
    private readonly string _root = Path.Combine(Path.GetTempPath(), "medserve-objectstore-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    [AzuriteFact]
    public async Task A_model_put_through_one_cache_is_fetched_and_verified_into_another()
    {
        var (blobs, container) = await ContainerAsync();
        var a = new ArtifactStore(Path.Combine(_root, "a"), blobs);
        var b = new ArtifactStore(Path.Combine(_root, "b"), blobs);
        var bytes = await File.ReadAllBytesAsync(Risk);

        var digest = await a.PutAsync(new MemoryStream(bytes));
        Assert.True(await container.GetBlobClient("sha256/" + digest).ExistsAsync());
        Assert.False(File.Exists(b.PathOf(digest)));

        var clock = Stopwatch.StartNew();
        var path = await b.OpenVerifiedAsync(digest);
        output.WriteLine($"risk.onnx ({bytes.Length} bytes): downloaded and verified in {clock.Elapsed.TotalMilliseconds:F1} ms");

        Assert.Equal(b.PathOf(digest), path);
        Assert.Equal(bytes, await File.ReadAllBytesAsync(path));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_root, "b", "staging")));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        }

        // Cached now: the next open reads the local copy alone.
        clock.Restart();
        Assert.Equal(path, await b.OpenVerifiedAsync(digest));
        output.WriteLine($"the cached copy verified in {clock.Elapsed.TotalMilliseconds:F1} ms");
    }

    [AzuriteFact]
    public async Task Files_only_a_cache_held_before_the_object_store_are_uploaded_once_and_a_corrupt_one_never()
    {
        var (blobs, container) = await ContainerAsync();

        // Registered while the folder was the whole store: one good file, one since damaged.
        var alone = new ArtifactStore(Path.Combine(_root, "a"));
        var good = await alone.PutAsync(new MemoryStream(await File.ReadAllBytesAsync(Risk)));
        var damaged = await alone.PutAsync(new MemoryStream("another model"u8.ToArray()));
        await File.WriteAllTextAsync(alone.PathOf(damaged), "bit rot");

        var a = new ArtifactStore(Path.Combine(_root, "a"), blobs);
        Assert.Equal((1, 1), await a.UploadMissingAsync());
        Assert.True(await container.GetBlobClient("sha256/" + good).ExistsAsync());
        Assert.False(await container.GetBlobClient("sha256/" + damaged).ExistsAsync());
        Assert.Equal((0, 1), await a.UploadMissingAsync()); // the good one is there already

        var b = new ArtifactStore(Path.Combine(_root, "b"), blobs);
        Assert.Equal(await File.ReadAllBytesAsync(Risk), await File.ReadAllBytesAsync(await b.OpenVerifiedAsync(good)));
    }

    [AzuriteFact]
    public async Task A_blob_whose_bytes_do_not_hash_to_its_name_is_refused_and_not_cached()
    {
        var (blobs, container) = await ContainerAsync();
        var a = new ArtifactStore(Path.Combine(_root, "a"), blobs);
        var b = new ArtifactStore(Path.Combine(_root, "b"), blobs);
        var digest = await a.PutAsync(new MemoryStream("the model as registered"u8.ToArray()));
        await container.GetBlobClient("sha256/" + digest).UploadAsync(BinaryData.FromString("the model, altered"), overwrite: true);

        var error = await Assert.ThrowsAsync<InvalidDataException>(() => b.OpenVerifiedAsync(digest));

        Assert.Contains($"sha256:{digest} in the object store", error.Message);
        Assert.Contains("is corrupt", error.Message);
        Assert.Contains("not cached", error.Message);
        Assert.Contains(Hex("the model, altered"u8), error.Message);
        Assert.False(File.Exists(b.PathOf(digest)));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_root, "b"), "*", SearchOption.AllDirectories));
    }

    [AzuriteFact]
    public async Task A_corrupt_local_copy_is_fetched_again_from_the_object_store()
    {
        var (blobs, _) = await ContainerAsync();
        var a = new ArtifactStore(Path.Combine(_root, "a"), blobs);
        var bytes = await File.ReadAllBytesAsync(Risk);
        var digest = await a.PutAsync(new MemoryStream(bytes));
        await File.WriteAllTextAsync(a.PathOf(digest), "bit rot");

        var path = await a.OpenVerifiedAsync(digest);

        Assert.Equal(bytes, await File.ReadAllBytesAsync(path));
    }

    [AzuriteFact]
    public async Task The_same_bytes_stored_twice_are_one_blob_and_an_upload_never_replaces_one()
    {
        var (blobs, container) = await ContainerAsync();
        var a = new ArtifactStore(Path.Combine(_root, "a"), blobs);
        var b = new ArtifactStore(Path.Combine(_root, "b"), blobs);
        var bytes = await File.ReadAllBytesAsync(Risk);

        var digest = await a.PutAsync(new MemoryStream(bytes));
        Assert.Equal(digest, await a.PutAsync(new MemoryStream(bytes)));
        Assert.Equal(digest, await b.PutAsync(new MemoryStream(bytes)));

        var names = new List<string>();
        await foreach (var blob in container.GetBlobsAsync())
        {
            names.Add(blob.Name);
        }

        Assert.Equal(["sha256/" + digest], names);

        // If-None-Match: * — a second upload under a name, even with other bytes, leaves the first.
        var other = Path.Combine(_root, "other");
        await File.WriteAllTextAsync(other, "other bytes");
        await blobs.UploadAsync(digest, other);
        Assert.Equal(bytes, (await container.GetBlobClient("sha256/" + digest).DownloadContentAsync()).Value.Content.ToArray());
    }

    [AzuriteFact]
    public async Task A_digest_in_neither_store_is_refused_naming_it()
    {
        var (blobs, _) = await ContainerAsync();
        var b = new ArtifactStore(Path.Combine(_root, "b"), blobs);
        var digest = Hex("never stored"u8);

        var error = await Assert.ThrowsAsync<InvalidDataException>(() => b.OpenVerifiedAsync(digest));

        Assert.Contains($"sha256:{digest} is missing from the artifact cache and from the object store", error.Message);
        Assert.Contains(blobs.Name, error.Message);
        Assert.False(File.Exists(b.PathOf(digest)));
    }

    [AzuriteFact]
    public async Task A_large_model_is_streamed_and_verified()
    {
        var (blobs, _) = await ContainerAsync();
        var a = new ArtifactStore(Path.Combine(_root, "a"), blobs);
        var b = new ArtifactStore(Path.Combine(_root, "b"), blobs);
        var bytes = new byte[32 << 20];
        new Random(7).NextBytes(bytes);

        var clock = Stopwatch.StartNew();
        var digest = await a.PutAsync(new MemoryStream(bytes));
        output.WriteLine($"32 MiB: staged, hashed and uploaded in {clock.Elapsed.TotalMilliseconds:F0} ms");
        clock.Restart();
        var path = await b.OpenVerifiedAsync(digest);
        output.WriteLine($"32 MiB: downloaded and verified in {clock.Elapsed.TotalMilliseconds:F0} ms");

        Assert.Equal(Hex(bytes), Hex(await File.ReadAllBytesAsync(path)));
    }

    [Fact]
    public async Task An_unreachable_object_store_is_named_without_the_account_key()
    {
        const string key = "c2VjcmV0LWtleS10aGF0LW11c3Qtbm90LWxlYWs=";
        var options = new BlobClientOptions { Retry = { MaxRetries = 0 } };
        var closed = LocalServices.FreePort();
        var connection = $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};BlobEndpoint=http://127.0.0.1:{closed}/devstoreaccount1;";
        var blobs = new AzureBlobArtifactStore(new BlobContainerClient(connection, "models", options));

        var error = await Assert.ThrowsAsync<ArtifactObjectStoreException>(() => blobs.EnsureContainerAsync());
        var download = await Assert.ThrowsAsync<ArtifactObjectStoreException>(() => new ArtifactStore(Path.Combine(_root, "b"), blobs).OpenVerifiedAsync(Hex("x"u8)));

        foreach (var message in new[] { error.Message, download.Message })
        {
            Assert.Contains($"http://127.0.0.1:{closed}/devstoreaccount1/models", message);
            Assert.Contains("unreachable", message);
            Assert.DoesNotContain(key, message);
            Assert.Null(error.InnerException);
        }
    }

    [Fact]
    public void A_connection_string_the_client_cannot_read_is_refused_without_its_value()
    {
        var error = Assert.Throws<ArtifactObjectStoreException>(() =>
            AzureBlobArtifactStore.Create(new ArtifactsBlobOptions { ConnectionString = "AccountName=x;AccountKey=not base64 secret", Container = "models" }));

        Assert.Contains("Store:ArtifactsBlob:ConnectionString", error.Message);
        Assert.DoesNotContain("secret", error.Message);
    }

    [Fact]
    public void Blob_settings_are_refused_naming_the_setting_and_never_the_connection_string()
    {
        const string secret = "AccountName=acct;AccountKey=s3cr3t";

        Assert.Null(new StoreOptions().Problem());
        Assert.Null(new StoreOptions { ArtifactsBlob = { ConnectionString = secret, Container = "medserve-artifacts" } }.Problem());
        Assert.Null(new StoreOptions { ArtifactsBlob = { ConnectionString = "UseDevelopmentStorage=true", Container = "models" } }.Problem());
        var problems = new[]
        {
            new StoreOptions { ArtifactsBlob = { ConnectionString = secret } }.Problem(),
            new StoreOptions { ArtifactsBlob = { Container = "models" } }.Problem(),
            new StoreOptions { ArtifactsBlob = { ConnectionString = secret, Container = "Bad_Name" } }.Problem(),
            new StoreOptions { ArtifactsBlob = { ConnectionString = "s3cr3t-without-keys", Container = "models" } }.Problem(),
            new StoreOptions { ArtifactsBlob = { ConnectionString = "Protocol=https;Key=s3cr3t", Container = "models" } }.Problem(),
        };

        Assert.Contains("Store:ArtifactsBlob:Container is empty", problems[0]);
        Assert.Contains("Store:ArtifactsBlob:ConnectionString is empty", problems[1]);
        Assert.Contains("'Bad_Name' is not a blob container name", problems[2]);
        Assert.Contains("Store:ArtifactsBlob:ConnectionString cannot be read", problems[3]);
        Assert.Contains("Store:ArtifactsBlob:ConnectionString names no account", problems[4]);
        Assert.All(problems, p => Assert.DoesNotContain("s3cr3t", p));
    }

    [Fact]
    public async Task A_registration_uploads_its_artifact_before_the_version_is_recorded()
    {
        var objects = new MemoryObjectStore();
        var (registry, store) = await RegistryAsync(objects);
        await store.CreateModelAsync("risk", "");
        var recordedAtUpload = -1;
        objects.BeforeUpload = async _ => recordedAtUpload = (await store.ListVersionsAsync("risk")).Count;

        var record = await Register(registry, "1.0.0");

        Assert.Equal(0, recordedAtUpload);
        Assert.True(await objects.ExistsAsync(record.ArtifactSha256));
    }

    [Fact]
    public async Task A_registration_whose_upload_fails_records_nothing_and_caches_nothing()
    {
        var objects = new MemoryObjectStore { BeforeUpload = _ => throw new ArtifactObjectStoreException("cannot upload artifact: HTTP 503 ServerBusy") };
        var (registry, store) = await RegistryAsync(objects);
        await store.CreateModelAsync("risk", "");

        await Assert.ThrowsAsync<ArtifactObjectStoreException>(() => Register(registry, "1.0.0"));

        Assert.Empty(await store.ListVersionsAsync("risk"));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(_root, "artifacts"), "*", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Concurrent_opens_of_a_missing_artifact_fetch_it_once()
    {
        var objects = new MemoryObjectStore();
        var digest = await new ArtifactStore(Path.Combine(_root, "a"), objects).PutAsync(File.OpenRead(Risk));
        var b = new ArtifactStore(Path.Combine(_root, "b"), objects);

        var paths = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => b.OpenVerifiedAsync(digest))));

        Assert.All(paths, p => Assert.Equal(b.PathOf(digest), p));
        Assert.Equal(1, objects.Downloads);
    }

    private async Task<(AzureBlobArtifactStore Blobs, BlobContainerClient Container)> ContainerAsync()
    {
        var server = await azurite.Server;
        var name = TestAzurite.NewContainerName();
        var blobs = AzureBlobArtifactStore.Create(new ArtifactsBlobOptions { ConnectionString = server.ConnectionString, Container = name });
        await blobs.EnsureContainerAsync();
        return (blobs, new BlobContainerClient(server.ConnectionString, name));
    }

    private async Task<(ModelRegistry Registry, IRegistryStore Store)> RegistryAsync(IArtifactObjectStore objects)
    {
        Directory.CreateDirectory(_root);
        var store = await RegistryStore.OpenAsync(Path.Combine(_root, "registry.db"), new FakeTimeProvider());
        var backend = new OnnxBackend(Options.Create(new OnnxOptions()), NullLogger<OnnxBackend>.Instance);
        return (new ModelRegistry(store, new ArtifactStore(Path.Combine(_root, "artifacts"), objects), backend), store);
    }

    private static async Task<ModelVersionRecord> Register(ModelRegistry registry, string version)
    {
        await using var stream = File.OpenRead(Risk);
        return await registry.RegisterAsync(new VersionRegistration("risk", version, "file://" + Risk, "tester"), stream);
    }

    private static string Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}
