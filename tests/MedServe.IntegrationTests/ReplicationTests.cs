using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using MedServe.IntegrationTests.Support;
using MedServe.Tests.Support;

namespace MedServe.IntegrationTests;

/// <summary>
/// Two replicas (separate processes, data dirs of their own) sharing one real PostgreSQL and one
/// artifacts folder: a key revoked on one is refused by the other within 2 s, an alias moved on one
/// is served by the other within 2 s, an experiment made on one routes on the other; exactly one
/// leads the control loops, and when it is SIGKILLed the other takes them within 10 s.
/// </summary>
public sealed class ReplicationTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private static readonly string RiskFile = Path.Combine(AppContext.BaseDirectory, "samples", "risk.onnx");
    private readonly Replicas _replicas = new();

    [PostgresFact]
    public async Task Replicas_share_keys_aliases_experiments_and_one_leader_that_a_survivor_replaces()
    {
        var database = await TestPostgres.CreateDatabaseAsync();
        var repository = Path.Combine(_replicas.Work, "models");
        MedServe.Samples.SampleModels.ProvisionRisk(repository);
        var a = await StartAsync("a", repository, database);
        var admin = _replicas.AdminKey("a");
        var b = await StartAsync("b", repository, database);
        Assert.False(File.Exists(Path.Combine(_replicas.DataDir("b"), "admin.key")));
        using var onA = Replicas.Client(a, admin);
        using var onB = Replicas.Client(b, admin);

        // Keys: made on A, good on B (and remembered there), revoked on A, refused by B within 2 s.
        using (var created = await onA.PostAsync("/v1/keys", Replicas.Json("""{"name":"ward","scopes":["infer","models:read"]}""")))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            var ward = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("key").GetString()!;
            using var wardOnB = Replicas.Client(b, ward);
            Assert.Equal(HttpStatusCode.OK, (await wardOnB.GetAsync("/v2/models/risk")).StatusCode);
            using (var revoked = await onA.DeleteAsync("/v1/keys/ward"))
            {
                Assert.True(revoked.IsSuccessStatusCode, await revoked.Content.ReadAsStringAsync());
            }

            var refused = await Replicas.WithinAsync(TimeSpan.FromSeconds(2), async () => (await wardOnB.GetAsync("/v2/models/risk")).StatusCode == HttpStatusCode.Unauthorized);
            output.WriteLine($"a key revoked on A was refused by B after {refused.TotalMilliseconds:F0} ms");
        }

        // Aliases: two versions registered on A; the serving alias moved on A; B serves it within 2 s.
        using (var model = await onA.PostAsync("/v1/registry/models", Replicas.Json("""{"name":"ward-risk","description":"replicated"}""")))
        {
            Assert.True(model.IsSuccessStatusCode, await model.Content.ReadAsStringAsync());
        }

        await RegisterAsync(onA, "ward-risk", "1.0.0");
        await RegisterAsync(onA, "ward-risk", "1.1.0");
        await PutAliasAsync(onA, "ward-risk", 1);
        await Replicas.WithinAsync(TimeSpan.FromSeconds(2), async () => await ServedVersionAsync(onB, "ward-risk") == "1");
        await PutAliasAsync(onA, "ward-risk", 2);
        var moved = await Replicas.WithinAsync(TimeSpan.FromSeconds(2), async () => await ServedVersionAsync(onB, "ward-risk") == "2");
        output.WriteLine($"an alias moved on A was served by B after {moved.TotalMilliseconds:F0} ms");

        // Experiments: made on A (version 1 kept loaded by a second alias), routing on B.
        await PutAliasAsync(onA, "ward-risk", 1, "baseline");
        using (var experiment = await onA.PostAsync("/v1/experiments", Replicas.Json("""{"name":"ward-ab","model":"ward-risk","unit":"request","arms":[{"name":"control","version":1,"weight":0.5},{"name":"candidate","version":2,"weight":0.5}]}""")))
        {
            Assert.True(experiment.IsSuccessStatusCode, await experiment.Content.ReadAsStringAsync());
        }

        var routed = await Replicas.WithinAsync(TimeSpan.FromSeconds(2), async () =>
        {
            var versions = new HashSet<string?>();
            for (var i = 0; i < 40; i++)
            {
                versions.Add(await ServedVersionAsync(onB, "ward-risk"));
            }

            return versions.SetEquals(["1", "2"]);
        });
        output.WriteLine($"an experiment made on A routed on B after {routed.TotalMilliseconds:F0} ms");

        // B's journal is projected into the shared database: A lists the predictions B answered.
        await Replicas.WithinAsync(TimeSpan.FromSeconds(10), async () =>
        {
            using var listed = await onA.GetAsync("/v1/predictions/ward-risk?limit=1000");
            return listed.IsSuccessStatusCode && JsonDocument.Parse(await listed.Content.ReadAsStringAsync()).RootElement.GetProperty("predictions").GetArrayLength() >= 40;
        });

        // One leader for each loop; SIGKILL it and the survivor leads within 10 s.
        await Replicas.WithinAsync(TimeSpan.FromSeconds(10), async () => await LeadsAsync(onA, "rollout") + await LeadsAsync(onB, "rollout") == 1);
        var (leader, survivor) = await LeadsAsync(onA, "rollout") == 1 ? (a, onB) : (b, onA);
        Assert.Equal(1, await LeadsAsync(leader == a ? onA : onB, "alerts") + await LeadsAsync(survivor, "alerts"));
        Assert.Equal(1, await LeadsAsync(leader == a ? onA : onB, "retention") + await LeadsAsync(survivor, "retention"));
        await leader.KillAsync();
        var takeover = await Replicas.WithinAsync(TimeSpan.FromSeconds(10), async () =>
            await LeadsAsync(survivor, "rollout") == 1 && await LeadsAsync(survivor, "alerts") == 1 && await LeadsAsync(survivor, "retention") == 1);
        output.WriteLine($"the leader was SIGKILLed; the survivor led all three loops after {takeover.TotalMilliseconds:F0} ms");
    }

    private Task<ServerProcess> StartAsync(string name, string repository, string database)
    {
        CopyDirectory(repository, repository + "-" + name);
        return _replicas.StartAsync(name, repository + "-" + name, database,
            new Dictionary<string, string> { ["MEDSERVE_STORE__ARTIFACTSPATH"] = Path.Combine(_replicas.Work, "artifacts") });
    }

    private static void CopyDirectory(string from, string to)
    {
        if (Directory.Exists(to))
        {
            return;
        }

        foreach (var file in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    private static async Task RegisterAsync(HttpClient client, string model, string version)
    {
        using var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(await File.ReadAllBytesAsync(RiskFile));
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(file, "model", "risk.onnx");
        form.Add(new StringContent($$"""{"version":"{{version}}","registered_by":"tester"}"""), "metadata");
        using var response = await client.PostAsync($"/v1/registry/models/{model}/versions", form);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
    }

    private static async Task PutAliasAsync(HttpClient client, string model, long version, string alias = "champion")
    {
        using var response = await client.PutAsync($"/v1/registry/models/{model}/aliases/{alias}", Replicas.Json($$"""{"version":{{version}},"reason":"replication test"}"""));
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }

    private static async Task<string?> ServedVersionAsync(HttpClient client, string model)
    {
        var ones = string.Join(",", Enumerable.Repeat("1", 30));
        using var response = await client.PostAsync($"/v2/models/{model}/infer", Replicas.Json($$"""{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[{{ones}}]}]}"""));
        return response.IsSuccessStatusCode
            ? JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("model_version").GetString()
            : null;
    }

    private static async Task<int> LeadsAsync(HttpClient client, string loop)
    {
        try
        {
            var metrics = await client.GetStringAsync("/metrics");
            var line = metrics.Split('\n').Single(l => l.StartsWith($"medserve_leader{{loop=\"{loop}\"}} ", StringComparison.Ordinal));
            return int.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (HttpRequestException)
        {
            return 0;
        }
    }

    public void Dispose() => _replicas.Dispose();
}
