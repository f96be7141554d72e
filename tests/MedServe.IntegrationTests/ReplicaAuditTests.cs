using System.Diagnostics;
using System.Globalization;
using System.Net;
using MedServe.Compliance.Journal;
using MedServe.IntegrationTests.Support;
using MedServe.Tests.Support;

namespace MedServe.IntegrationTests;

/// <summary>
/// Two replicas on one real PostgreSQL that tell each other of changes through a real Redis
/// (<c>Store:Notifications=redis</c>, the counters polled only once a minute), each with a journal
/// and a signing key of its own: a revocation on one reaches the other through Redis, and
/// <c>medserve audit verify-replicas</c> checks both chains against the heads they published,
/// catching a replica left out, a key not pinned, and a replica whose last records were deleted
/// together with its local anchor.
/// </summary>
public sealed class ReplicaAuditTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private const string RiskBody = """{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}]}""";

    private readonly Replicas _replicas = new();

    [RedisFact(WithPostgres = true)]
    public async Task Redis_carries_a_revocation_and_an_auditor_checks_every_replicas_chain_against_its_published_head()
    {
        var database = await TestPostgres.CreateDatabaseAsync();
        using var redis = await TestRedis.StartAsync();
        var repository = Path.Combine(_replicas.Work, "models");
        MedServe.Samples.SampleModels.ProvisionRisk(repository);
        var a = await StartAsync("a", repository, database, redis.ConnectionString);
        var admin = _replicas.AdminKey("a");
        var b = await StartAsync("b", repository, database, redis.ConnectionString);
        using var onA = Replicas.Client(a, admin);
        using var onB = Replicas.Client(b, admin);

        // Both replicas' subscriptions in force, as Redis counts them.
        await using (var watcher = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(redis.ConnectionString))
        {
            await Replicas.WithinAsync(TimeSpan.FromSeconds(10), async () =>
                (long)((StackExchange.Redis.RedisResult[])(await watcher.GetDatabase().ExecuteAsync("PUBSUB", "NUMSUB", "medserve:changes"))!)[1] == 2);
        }

        // A key revoked on A is refused by B within 2 s: the poll runs once a minute, so Redis carried it.
        using (var created = await onA.PostAsync("/v1/keys", Replicas.Json("""{"name":"ward","scopes":["infer"]}""")))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
            var ward = System.Text.Json.JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("key").GetString()!;
            using var wardOnB = Replicas.Client(b, ward);
            Assert.Equal(HttpStatusCode.OK, (await wardOnB.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody))).StatusCode);
            using (var revoked = await onA.DeleteAsync("/v1/keys/ward"))
            {
                Assert.True(revoked.IsSuccessStatusCode, await revoked.Content.ReadAsStringAsync());
            }

            var refused = await Replicas.WithinAsync(TimeSpan.FromSeconds(2),
                async () => (await wardOnB.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody))).StatusCode == HttpStatusCode.Unauthorized);
            output.WriteLine($"a key revoked on A was refused by B after {refused.TotalMilliseconds:F0} ms (through Redis)");
        }

        foreach (var client in new[] { onA, onB })
        {
            for (var i = 0; i < 5; i++)
            {
                Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody))).StatusCode);
            }
        }

        // A clean stop publishes the last head.
        await StopAsync(a);
        await StopAsync(b);
        var heads = await SharedJournalHeads.ReadAllAsync(database);
        var names = new[] { "a", "b" }.Select(n => File.ReadAllText(Path.Combine(_replicas.DataDir(n), "replica.id")).Trim()).ToArray();
        Assert.Equal(names.Order(StringComparer.Ordinal), heads.Select(h => h.Replica));
        var (dirA, dirB) = (_replicas.DataDir("a"), _replicas.DataDir("b"));
        var keyA = Path.Combine(dirA, "secrets", "audit-signing.pub.pem");
        var keyB = Path.Combine(dirB, "secrets", "audit-signing.pub.pem");

        var (exit, text) = await VerifyAsync(database, dirA, dirB, "--public-key", keyA, "--public-key", keyB);
        Assert.True(exit == 0, text);
        Assert.Equal(2, text.Split('\n').Count(l => l.Contains(": intact: ", StringComparison.Ordinal)));
        Assert.Contains($"{names[1]}: intact: ", text);

        // A replica left out of the audit, and a key not pinned, each fail it, naming the replica.
        (exit, text) = await VerifyAsync(database, dirA, "--public-key", keyA, "--public-key", keyB);
        Assert.Equal(1, exit);
        Assert.Contains($"{names[1]}: NOT CHECKED: its data dir was not given", text);
        (exit, text) = await VerifyAsync(database, dirA, dirB, "--public-key", keyA);
        Assert.Equal(1, exit);
        Assert.Contains($"{names[1]}: NOT INTACT: its checkpoints are signed by a key that was not pinned", text);

        // B's last records deleted, its local anchor with them: its own verify is fooled, the shared head is not.
        var published = heads.Single(h => h.Replica == names[1]).Head.Sequence;
        var segment = Directory.GetFiles(Path.Combine(dirB, "journal"), "*.seg").Order().Last();
        var end = JournalSegments.Scan(segment, (body, _, _) => JournalFormat.SequenceOf(body.Span) < published - 3).End;
        using (var file = File.OpenHandle(segment, FileMode.Open, FileAccess.ReadWrite))
        {
            RandomAccess.SetLength(file, end);
        }

        File.Delete(Path.Combine(dirB, "journal.anchor"));
        var (alone, aloneText) = await ServerProcess.RunAsync(_replicas.Work, "audit", "verify", "--data-dir", dirB, "--public-key", keyB);
        Assert.True(alone == 0, aloneText);
        (exit, text) = await VerifyAsync(database, dirA, dirB, "--public-key", keyA, "--public-key", keyB);
        Assert.Equal(1, exit);
        Assert.Contains($"{names[0]}: intact: ", text);
        Assert.Contains($"{names[1]}: NOT INTACT: ", text);
        Assert.DoesNotContain("Password", text, StringComparison.OrdinalIgnoreCase);
        output.WriteLine(text);
    }

    private Task<(int ExitCode, string Output)> VerifyAsync(string database, params string[] arguments) =>
        ServerProcess.RunAsync(_replicas.Work, new Dictionary<string, string> { ["MEDSERVE_STORE__CONNECTIONSTRING"] = database }, ["audit", "verify-replicas", .. arguments]);

    private Task<ServerProcess> StartAsync(string name, string repository, string database, string redis) =>
        _replicas.StartAsync(name, repository, database, new Dictionary<string, string>
        {
            ["MEDSERVE_STORE__ARTIFACTSPATH"] = Path.Combine(_replicas.Work, "artifacts"),
            ["MEDSERVE_STORE__NOTIFICATIONS"] = "redis",
            ["MEDSERVE_STORE__CHANGEPOLLINTERVAL"] = "00:01:00",
            ["MEDSERVE_REDIS__CONNECTIONSTRING"] = redis,
            ["MEDSERVE_JOURNAL__HEADPUBLISHINTERVAL"] = "00:00:00.200",
        });

    private static async Task StopAsync(ServerProcess server)
    {
        using (Process.Start("kill", ["-TERM", server.Process.Id.ToString(CultureInfo.InvariantCulture)]))
        {
        }

        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await server.Process.WaitForExitAsync(limit.Token);
        Assert.True(server.Process.ExitCode == 0, server.Output);
    }

    public void Dispose() => _replicas.Dispose();
}
