using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.RegularExpressions;
using MedServe.IntegrationTests.Support;
using MedServe.Tests.Support;

namespace MedServe.IntegrationTests;

/// <summary>
/// Two replicas (separate processes, each with its own data dir and artifact cache, no shared
/// folder) on one real PostgreSQL and one Azurite container: a version registered and made the
/// serving one on A is served by B, which fetched the artifact from the blob store and checked it.
/// </summary>
public sealed partial class BlobArtifactReplicationTests(Xunit.Abstractions.ITestOutputHelper output) : IAsyncLifetime
{
    private readonly Replicas _replicas = new();
    private TestAzurite? _azurite;

    public Task InitializeAsync() => Task.CompletedTask;

    [AzuriteFact(WithPostgres = true)]
    public async Task A_version_registered_on_one_replica_is_served_by_another_from_the_blob_store()
    {
        _azurite = await TestAzurite.StartAsync();
        var container = TestAzurite.NewContainerName(); // made by the first replica to start
        var database = await TestPostgres.CreateDatabaseAsync();
        var trained = Path.Combine(_replicas.Work, "trained");
        MedServe.Samples.SampleModels.ProvisionBreastCancer(trained);
        var onnx = await File.ReadAllBytesAsync(Path.Combine(trained, "breast-cancer", "1", "model.onnx"));
        var digest = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(onnx));

        var a = await StartAsync("a", database, container);
        var admin = _replicas.AdminKey("a");
        var b = await StartAsync("b", database, container);
        using var onA = Replicas.Client(a, admin);
        using var onB = Replicas.Client(b, admin);

        using (var model = await onA.PostAsync("/v1/registry/models", Replicas.Json("""{"name":"bc","description":"breast cancer, from the blob store"}""")))
        {
            Assert.True(model.IsSuccessStatusCode, await model.Content.ReadAsStringAsync());
        }

        await RegisterAsync(onA, "bc", onnx);
        Assert.True(File.Exists(CachePath("a", digest)));
        Assert.False(File.Exists(CachePath("b", digest)));

        using (var alias = await onA.PutAsync("/v1/registry/models/bc/aliases/champion", Replicas.Json("""{"version":1,"reason":"blob replication test"}""")))
        {
            Assert.True(alias.IsSuccessStatusCode, await alias.Content.ReadAsStringAsync());
        }

        var served = await Replicas.WithinAsync(TimeSpan.FromSeconds(30), async () => await InferAsync(onB) is not null);
        output.WriteLine($"B served the version registered on A after {served.TotalMilliseconds:F0} ms");

        var fromA = await WithinValueAsync(TimeSpan.FromSeconds(10), () => InferAsync(onA));
        var fromB = await InferAsync(onB);
        Assert.Equal(fromA, fromB);

        // B's copy came from the blob store, checked, into its own cache.
        Assert.Equal(onnx, await File.ReadAllBytesAsync(CachePath("b", digest)));
        var fetched = Fetched().Match(b.Output);
        Assert.True(fetched.Success, "B did not log a fetch from the object store: " + b.Output);
        Assert.Equal(digest, fetched.Groups["digest"].Value);
        output.WriteLine($"B fetched and verified {fetched.Groups["bytes"].Value} bytes in {fetched.Groups["ms"].Value} ms");
        Assert.DoesNotContain("sha256:" + digest + " fetched", a.Output);

        // The artifact download API on B serves the same bytes.
        Assert.Equal(onnx, await onB.GetByteArrayAsync("/v1/registry/models/bc/versions/1/artifact"));

        // The store down: B keeps serving from its cache; a registration on A fails whole (503) and records nothing.
        _azurite.Kill();
        Assert.Equal(fromB, await InferAsync(onB));
        using (var form = Upload(await File.ReadAllBytesAsync(Path.Combine(AppContext.BaseDirectory, "samples", "risk.onnx")), "2.0.0"))
        using (var refused = await onA.PostAsync("/v1/registry/models/bc/versions", form))
        {
            var body = await refused.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Contains("cannot look up artifact sha256:", body);
            Assert.DoesNotContain(TestAzurite.AccountKey, body);
        }

        using (var versions = await onA.GetAsync("/v1/registry/models/bc"))
        {
            Assert.Equal(1, JsonDocument.Parse(await versions.Content.ReadAsStringAsync()).RootElement.GetProperty("versions").GetArrayLength());
        }

        foreach (var server in _replicas.Started)
        {
            Assert.DoesNotContain(TestAzurite.AccountKey, server.Output);
        }
    }

    [Fact]
    public async Task A_replica_whose_object_store_cannot_be_reached_refuses_to_start_naming_it_and_never_the_key()
    {
        const string key = "bm90LXRvLWJlLWVjaG9lZC1hbnl3aGVyZQ==";
        var closed = ServerProcess.FreePort();
        Directory.CreateDirectory(Path.Combine(_replicas.Work, "models"));
        var (exitCode, text) = await ServerProcess.RunAsync(_replicas.Work,
            new Dictionary<string, string>
            {
                ["MEDSERVE_PROVISION_SAMPLES"] = "false",
                ["MEDSERVE_STORE__ARTIFACTSBLOB__CONNECTIONSTRING"] = $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={key};BlobEndpoint=http://127.0.0.1:{closed}/devstoreaccount1;",
                ["MEDSERVE_STORE__ARTIFACTSBLOB__CONTAINER"] = "models",
            },
            "serve", "--http-port", $"{ServerProcess.FreePort()}", "--grpc-port", $"{ServerProcess.FreePort()}", "--data-dir", _replicas.DataDir("data"), "--model-repository", Path.Combine(_replicas.Work, "models"));

        Assert.Equal(2, exitCode);
        Assert.Contains($"medserve: cannot open the artifact container in the object store http://127.0.0.1:{closed}/devstoreaccount1/models: unreachable", text);
        Assert.DoesNotContain(key, text);
    }

    private Task<ServerProcess> StartAsync(string name, string database, string container)
    {
        var repository = Path.Combine(_replicas.Work, "models-" + name);
        Directory.CreateDirectory(repository);
        return _replicas.StartAsync(name, repository, database, new Dictionary<string, string>
        {
            ["MEDSERVE_STORE__ARTIFACTSBLOB__CONNECTIONSTRING"] = _azurite!.ConnectionString,
            ["MEDSERVE_STORE__ARTIFACTSBLOB__CONTAINER"] = container,
        });
    }

    private string CachePath(string replica, string digest) => Path.Combine(_replicas.DataDir(replica), "artifacts", "sha256", digest[..2], digest);

    private static async Task RegisterAsync(HttpClient client, string model, byte[] onnx)
    {
        using var form = Upload(onnx, "1.0.0");
        using var response = await client.PostAsync($"/v1/registry/models/{model}/versions", form);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
    }

    private static MultipartFormDataContent Upload(byte[] onnx, string version)
    {
        var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(onnx);
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(file, "model", "model.onnx");
        form.Add(new StringContent($$"""{"version":"{{version}}","registered_by":"tester"}"""), "metadata");
        return form;
    }

    /// <summary>The version and the output of one fixed row, or null while the model does not serve.</summary>
    private static async Task<string?> InferAsync(HttpClient client)
    {
        var row = string.Join(",", Enumerable.Range(0, 30).Select(i => (i * 0.37 + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        using var response = await client.PostAsync("/v2/models/bc/infer", Replicas.Json($$"""{"inputs":[{"name":"features","shape":[1,30],"datatype":"FP32","data":[{{row}}]}]}"""));
        if (!response.IsSuccessStatusCode)
        {
            return null;
        }

        var root = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        return root.GetProperty("model_version").GetString() + " " + root.GetProperty("outputs")[0].GetProperty("data").GetRawText();
    }

    private static async Task<string> WithinValueAsync(TimeSpan limit, Func<Task<string?>> value)
    {
        string? result = null;
        await Replicas.WithinAsync(limit, async () => (result = await value()) is not null);
        return result!;
    }

    [GeneratedRegex(@"Artifact sha256:(?<digest>[0-9a-f]{64}) fetched from the object store \S+ and verified: (?<bytes>\d+) bytes in (?<ms>\d+) ms")]
    private static partial Regex Fetched();

    public async Task DisposeAsync()
    {
        _replicas.Dispose();
        if (_azurite is not null)
        {
            await _azurite.DisposeAsync();
        }
    }
}
