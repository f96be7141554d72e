using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using MedServe.IntegrationTests.Support;
using MedServe.Samples;
using MedServe.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Xunit.Abstractions;

namespace MedServe.IntegrationTests;

/// <summary>
/// The attack that read admin.key through a crafted model, and its whole class: every route that
/// takes a path, a source, a file name or a config is tried, as a key holding models:write and
/// infer would, with absolute paths, <c>..</c>, symlinks, <c>file://</c>, <c>/proc</c>, external-data
/// references and redirects. Nothing outside a model's own folder may be read, copied, served,
/// hashed back or located in an answer.
/// </summary>
public sealed class PathAttackTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly string _shared = Path.Combine(Path.GetTempPath(), "medserve-shared-" + Guid.NewGuid().ToString("N"));
    private RunningServer _server = null!;
    private HttpClient _attacker = null!;
    private readonly List<string> _answers = [];

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_shared);
        File.Copy(Path.Combine(AppContext.BaseDirectory, "samples", "risk.onnx"), Path.Combine(_shared, "risk.onnx"));
        _server = await RunningServer.StartAsync(
            new Dictionary<string, string?>
            {
                ["MedServe:Registry:AllowedSourceDirectories:0"] = _shared,
                ["MedServe:Registry:AllowedSourceHosts:0"] = "localhost",
            },
            provision: repository =>
            {
                SampleModels.ProvisionRisk(repository);

                // A model dropped into the repository whose weights are the admin key.
                Directory.CreateDirectory(Path.Combine(repository, "exfil", "1"));
                File.WriteAllBytes(Path.Combine(repository, "exfil", "1", "model.onnx"), HostileModels.ExternalWeights("../../../admin.key"));
                Directory.CreateDirectory(Path.Combine(repository, "linked", "1"));
                File.CreateSymbolicLink(Path.Combine(repository, "linked", "1", "model.onnx"), Path.Combine(repository, "risk", "1", "model.onnx"));
            });
        using var admin = _server.Client(_server.AdminKey);
        using var created = await admin.PostAsync("/v1/keys", new StringContent("""{"name":"narrow","scopes":["models:write","infer"]}"""));
        _attacker = _server.Client((await ServerFixture.JsonAsync(created)).GetProperty("key").GetString());
    }

    public async Task DisposeAsync()
    {
        _attacker.Dispose();
        await _server.DisposeAsync();
        Directory.Delete(_shared, recursive: true);
    }

    /// <summary>Files no caller may read: the data dir's keys and stores, the process, the system, one stored artifact.</summary>
    private List<string> Targets() =>
    [
        Path.Combine(_server.Root, "admin.key"),
        Path.Combine(_server.Root, "secrets", "pseudonym.key"),
        Path.Combine(_server.Root, "secrets", "audit-signing.pem"),
        Path.Combine(_server.Root, "keys.db"),
        Path.Combine(_server.Root, "models", "risk", "1", "model.onnx"),
        "/proc/self/environ",
        "/etc/passwd",
    ];

    [Fact]
    public async Task No_route_reads_a_file_outside_its_models_folder()
    {
        // One version the attacker may register, so the artifact store holds something worth reaching.
        await Create("registered-models/create", new { name = "attack" });
        var legit = await Create("model-versions/create", new { name = "attack", source = Path.Combine(_shared, "risk.onnx") });
        Assert.Equal("", legit.GetProperty("model_version").GetProperty("status_message").GetString());
        var artifact = Directory.EnumerateFiles(Path.Combine(_server.Root, "artifacts", "sha256"), "*", SearchOption.AllDirectories).Single();
        var targets = Targets().Append(artifact).ToList();

        // 1. MLflow sources: absolute, file://, traversal out of the allowed folder, symlinks in it.
        var index = 0;
        foreach (var target in targets)
        {
            var link = Path.Combine(_shared, $"link{index++}.onnx");
            File.CreateSymbolicLink(link, target);
            var relative = Path.GetRelativePath(_shared, target);
            foreach (var source in new[] { target, "file://" + target, "file://localhost" + target, Path.Combine(_shared, relative), "file://" + Path.Combine(_shared, relative), link, _shared + "/../" + relative })
            {
                var version = (await Create("model-versions/create", new { name = "attack", source })).GetProperty("model_version");
                Assert.StartsWith("not servable by MedServe", version.GetProperty("status_message").GetString());
            }
        }

        Directory.CreateSymbolicLink(Path.Combine(_shared, "escape"), _server.Root);
        var escaped = (await Create("model-versions/create", new { name = "attack", source = Path.Combine(_shared, "escape") })).GetProperty("model_version");
        Assert.StartsWith("not servable by MedServe", escaped.GetProperty("status_message").GetString());

        // 2. Crafted models whose external data names each target, uploaded, from the allowed folder, and with the weights beside them.
        File.WriteAllBytes(Path.Combine(_shared, "weights.bin"), new byte[16]);
        foreach (var location in targets.SelectMany(t => new[] { t, Path.GetRelativePath(Path.Combine(_server.Root, "artifacts", "staging", "x"), t), Path.GetRelativePath(_shared, t) }).Append("weights.bin"))
        {
            var model = HostileModels.ExternalWeights(location);
            using var upload = await Upload("attack", model);
            Assert.Equal(HttpStatusCode.BadRequest, upload.StatusCode);

            var file = Path.Combine(_shared, "crafted.onnx");
            File.WriteAllBytes(file, model);
            using var fromSource = await _attacker.PostAsync("/api/2.0/mlflow/model-versions/create", Json(new { name = "attack", source = file }));
            await Record(fromSource);
            Assert.NotEqual(HttpStatusCode.OK, fromSource.StatusCode);
        }

        // 3. Repository loads whose config names a file elsewhere, and model names that climb.
        foreach (var name in targets.Concat(["../../admin.key", "..", "1/../../../admin.key", "model.onnx/../../../admin.key"]))
        {
            var config = JsonSerializer.Serialize(new { name = "risk", platform = "onnxruntime_onnx", default_model_filename = name });
            using var load = await _attacker.PostAsync("/v2/repository/models/risk/load", Json(new { parameters = new { config } }));
            await Record(load);
            Assert.Equal(HttpStatusCode.BadRequest, load.StatusCode);
        }

        foreach (var model in new[] { "..%2F..%2Fsecrets", "%2e%2e", ".hidden", "exfil", "linked" })
        {
            using var load = await _attacker.PostAsync($"/v2/repository/models/{model}/load", Json(new { }));
            await Record(load);
            Assert.NotEqual(HttpStatusCode.OK, load.StatusCode);
        }

        // 4. Nothing reached got served: risk still answers as itself, exfil and linked never load.
        using (var infer = await _attacker.PostAsync("/v2/models/exfil/infer", Json(new { inputs = new[] { new { name = "input", shape = new[] { 1, 4 }, datatype = "FP32", data = new[] { 0, 0, 0, 0 } } } })))
        {
            await Record(infer);
            Assert.NotEqual(HttpStatusCode.OK, infer.StatusCode);
        }

        using var reader = _server.Client(_server.AdminKey);
        using (var repositoryIndex = await reader.PostAsync("/v2/repository/index", Json(new { })))
        {
            var entries = (await ServerFixture.JsonAsync(repositoryIndex)).EnumerateArray().ToList();
            Assert.Contains(entries, e => e.GetProperty("name").GetString() == "exfil" && e.GetProperty("reason").GetString()!.Contains("outside the model's folder"));
            Assert.Contains(entries, e => e.GetProperty("name").GetString() == "linked" && e.GetProperty("reason").GetString()!.Contains("resolves outside"));
        }

        // 5. No copy of any target in the artifact store, nothing left staged, nothing located or hashed in an answer.
        var secrets = targets.Where(File.Exists).Select(t => (Path: t, Bytes: File.ReadAllBytes(t))).Where(t => t.Bytes.Length > 0 && t.Path != artifact && !t.Path.EndsWith("model.onnx", StringComparison.Ordinal)).ToList();
        foreach (var stored in Directory.EnumerateFiles(Path.Combine(_server.Root, "artifacts"), "*", SearchOption.AllDirectories))
        {
            var bytes = File.ReadAllBytes(stored);
            Assert.DoesNotContain(secrets, s => s.Bytes.AsSpan().SequenceEqual(bytes));
        }

        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_server.Root, "artifacts", "staging")));
        var hashes = secrets.Select(s => Convert.ToHexStringLower(SHA256.HashData(s.Bytes))).ToList();
        // MLflow's answers echo the caller's own "source"; anything else naming the data dir is a leak.
        foreach (var answer in _answers.Select(a => System.Text.RegularExpressions.Regex.Replace(a, "\"source\":\"[^\"]*\"", "")))
        {
            Assert.DoesNotContain(_server.Root, answer);
            Assert.DoesNotContain(hashes, h => answer.Contains(h, StringComparison.Ordinal));
        }

        output.WriteLine($"{_answers.Count} hostile path requests answered, none read outside its model's folder");
    }

    [Fact]
    public async Task A_redirect_off_the_allowed_host_is_not_followed()
    {
        using var elsewhere = new TcpListener(IPAddress.Loopback, 0);
        elsewhere.Start();
        var hits = 0;
        _ = Task.Run(async () =>
        {
            using var client = await elsewhere.AcceptTcpClientAsync();
            Interlocked.Increment(ref hits);
        });
        await using var redirector = await RedirectServer.StartAsync($"http://127.0.0.1:{((IPEndPoint)elsewhere.LocalEndpoint).Port}/admin.key");
        await Create("registered-models/create", new { name = "redirected" });

        var version = (await Create("model-versions/create", new { name = "redirected", source = $"http://localhost:{redirector.Port}/model.onnx" })).GetProperty("model_version");

        Assert.Contains("redirect led to host '127.0.0.1'", version.GetProperty("status_message").GetString());
        Assert.Equal(1, redirector.Requests);
        Assert.Equal(0, Volatile.Read(ref hits));
    }

    private async Task<JsonElement> Create(string route, object body)
    {
        using var response = await _attacker.PostAsync("/api/2.0/mlflow/" + route, Json(body));
        var text = await Record(response);
        Assert.True(response.IsSuccessStatusCode, $"{route}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private async Task<HttpResponseMessage> Upload(string model, byte[] onnx)
    {
        using var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(onnx);
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(file, "model", "model.onnx");
        form.Add(new StringContent("{}"), "metadata");
        var response = await _attacker.PostAsync($"/v1/registry/models/{model}/versions", form);
        await Record(response);
        return response;
    }

    private async Task<string> Record(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        _answers.Add(text);
        return text;
    }

    private static StringContent Json(object body) => new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");

    /// <summary>A loopback server that answers every request with a 302 to one place, and counts them.</summary>
    private sealed class RedirectServer : IAsyncDisposable
    {
        private readonly Microsoft.AspNetCore.Builder.WebApplication _app;
        private int _requests;

        private RedirectServer(Microsoft.AspNetCore.Builder.WebApplication app) => _app = app;

        public int Port => new Uri(Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>(_app.Services)
            .Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.First()).Port;

        public int Requests => Volatile.Read(ref _requests);

        public static async Task<RedirectServer> StartAsync(string location)
        {
            var builder = Microsoft.AspNetCore.Builder.WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            var app = builder.Build();
            var server = new RedirectServer(app);
            app.Run(context =>
            {
                Interlocked.Increment(ref server._requests);
                context.Response.Redirect(location);
                return Task.CompletedTask;
            });
            await app.StartAsync();
            return server;
        }

        public async ValueTask DisposeAsync() => await _app.DisposeAsync();
    }
}
