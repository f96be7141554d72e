using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using MedServe.IntegrationTests.Support;

namespace MedServe.IntegrationTests;

/// <summary>
/// medserve backup under load, and medserve restore into a fresh data dir: the registry, the keys,
/// the audit chain and the served outputs come back identical.
/// </summary>
public sealed class BackupTests
{
    private static readonly string RiskBody = $$"""{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[{{string.Join(",", Enumerable.Range(0, 30).Select(i => (i % 7 / 10.0).ToString(System.Globalization.CultureInfo.InvariantCulture)))}}]}]}""";

    [Fact]
    public async Task A_backup_taken_under_load_restores_the_registry_the_audit_chain_and_the_outputs()
    {
        var original = Path.Combine(Path.GetTempPath(), "medserve-backup-a-" + Guid.NewGuid().ToString("N"));
        var restored = Path.Combine(Path.GetTempPath(), "medserve-backup-b-" + Guid.NewGuid().ToString("N"));
        var backup = Path.Combine(Path.GetTempPath(), "medserve-backup-" + Guid.NewGuid().ToString("N"));
        try
        {
            string before, registryBefore, triageBefore;
            await using (var server = await RunningServer.StartAsync(new Dictionary<string, string?>(), root: original))
            {
                using var client = server.Client(server.AdminKey);
                await RegisterAsync(client);
                before = await OutputAsync(client, "risk");
                triageBefore = await OutputAsync(client, "triage");
                registryBefore = await RegistryAsync(client);

                // Load while the backup runs: the snapshot must still be consistent.
                using var stop = new CancellationTokenSource();
                var failures = 0;
                var load = Task.Run(async () =>
                {
                    while (!stop.IsCancellationRequested)
                    {
                        using var response = await client.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody, Encoding.UTF8, "application/json"));
                        failures += response.StatusCode == HttpStatusCode.OK ? 0 : 1;
                    }
                });
                await Task.Delay(200);
                var errors = new StringWriter();
                var previous = Console.Error;
                Console.SetError(errors);
                int code;
                try
                {
                    code = await Cli("backup", backup, "--data-dir", original);
                }
                finally
                {
                    Console.SetError(previous);
                }

                Assert.True(code == 0, "backup failed: " + errors);
                await stop.CancelAsync();
                await load;
                Assert.Equal(0, failures);
            }

            var manifest = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(backup, "manifest.json"))).RootElement;
            var files = manifest.GetProperty("Files").EnumerateArray().Select(f => f.GetProperty("Path").GetString()!).ToList();
            Assert.Contains("registry.db", files);
            Assert.Contains(files, f => f.StartsWith("journal/journal-", StringComparison.Ordinal));
            Assert.Contains("secrets/pseudonym.key.wrapped", files);
            Assert.DoesNotContain(files, f => f.Contains("master.keys", StringComparison.Ordinal)); // the master key is never in a backup
            Assert.False(File.Exists(Path.Combine(backup, "secrets", "pseudonym.key")));

            // A tampered backup restores nothing.
            var damaged = backup + "-damaged";
            CopyFolder(backup, damaged);
            File.AppendAllText(Path.Combine(damaged, "registry.db"), "x");
            Assert.Equal(1, await Cli("restore", damaged, "--data-dir", restored + "-x", "--master-key-file", Path.Combine(original, "secrets", "master.keys")));
            Assert.False(Directory.Exists(restored + "-x") && Directory.EnumerateFileSystemEntries(restored + "-x").Any());
            Directory.Delete(damaged, recursive: true);

            Assert.Equal(0, await Cli("restore", backup, "--data-dir", restored, "--master-key-file", Path.Combine(original, "secrets", "master.keys"), "--embed-master-key"));
            Assert.Equal(0, await Cli("audit", "verify", "--data-dir", restored, "--public-key", Path.Combine(original, "secrets", "audit-signing.pub.pem")));

            await using (var again = await RunningServer.StartAsync(new Dictionary<string, string?>(), root: restored))
            {
                // The same admin key (keys.db came back), the same registry, the same answers.
                using var client = again.Client(again.AdminKey);
                Assert.Equal(registryBefore, await RegistryAsync(client));
                Assert.Equal(before, await OutputAsync(client, "risk"));
                Assert.Equal(triageBefore, await OutputAsync(client, "triage"));
            }

            // The restored server appended to the chain it was given: it still verifies against the original's key.
            Assert.Equal(0, await Cli("audit", "verify", "--data-dir", restored, "--public-key", Path.Combine(original, "secrets", "audit-signing.pub.pem")));
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            foreach (var folder in new[] { original, restored, backup })
            {
                if (Directory.Exists(folder))
                {
                    Directory.Delete(folder, recursive: true);
                }
            }
        }
    }

    [MedServe.Tests.Support.PostgresFact]
    public async Task With_a_shared_postgres_the_backup_dumps_it_and_restore_brings_it_back_into_an_empty_database()
    {
        var original = Path.Combine(Path.GetTempPath(), "medserve-backup-pa-" + Guid.NewGuid().ToString("N"));
        var restored = Path.Combine(Path.GetTempPath(), "medserve-backup-pb-" + Guid.NewGuid().ToString("N"));
        var backup = Path.Combine(Path.GetTempPath(), "medserve-backup-p-" + Guid.NewGuid().ToString("N"));
        var (source, empty) = (await MedServe.Tests.Support.TestPostgres.CreateDatabaseAsync(), await MedServe.Tests.Support.TestPostgres.CreateDatabaseAsync());
        Dictionary<string, string?> On(string database) => new() { ["MedServe:Store:Provider"] = "postgres", ["MedServe:Store:ConnectionString"] = database };
        try
        {
            string registryBefore, triageBefore, adminKey;
            await using (var server = await RunningServer.StartAsync(On(source), root: original))
            {
                adminKey = server.AdminKey;
                using var client = server.Client(adminKey);
                await RegisterAsync(client);
                triageBefore = await OutputAsync(client, "triage");
                registryBefore = await RegistryAsync(client);
                Assert.Equal(0, await Cli("backup", backup, "--data-dir", original, "--postgres", source));
            }

            Assert.True(File.Exists(Path.Combine(backup, MedServe.Backup.PostgresBackup.DumpName)));
            Assert.DoesNotContain(Directory.GetFiles(backup), f => f.EndsWith(".db", StringComparison.Ordinal)); // the stores are in PostgreSQL, not in files

            // Into a database that is not empty: refused, nothing written.
            Assert.Equal(1, await Cli("restore", backup, "--data-dir", restored + "-x", "--master-key-file", Path.Combine(original, "secrets", "master.keys"), "--postgres", source));
            Assert.False(Directory.Exists(restored + "-x"));
            Assert.Equal(0, await Cli("restore", backup, "--data-dir", restored, "--master-key-file", Path.Combine(original, "secrets", "master.keys"), "--embed-master-key", "--postgres", empty));

            await using (var again = await RunningServer.StartAsync(On(empty), root: restored))
            {
                // The keys came back in PostgreSQL: the original admin key still works.
                using var client = again.Client(adminKey);
                Assert.Equal(registryBefore, await RegistryAsync(client));
                Assert.Equal(triageBefore, await OutputAsync(client, "triage"));
            }
        }
        finally
        {
            foreach (var folder in new[] { original, restored, restored + "-x", backup })
            {
                if (Directory.Exists(folder))
                {
                    Directory.Delete(folder, recursive: true);
                }
            }
        }
    }

    private static async Task RegisterAsync(HttpClient client)
    {
        using (await client.PostAsync("/v1/registry/models", new StringContent("""{"name":"triage","description":"ED triage"}""")))
        {
        }

        var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(await File.ReadAllBytesAsync(Path.Combine(AppContext.BaseDirectory, "samples", "risk.onnx")));
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(file, "model", "risk.onnx");
        form.Add(new StringContent("""{"version":"1.0.0","registered_by":"tester"}"""), "metadata");
        using (var registered = await client.PostAsync("/v1/registry/models/triage/versions", form))
        {
            Assert.Equal(HttpStatusCode.Created, registered.StatusCode);
        }

        using var alias = await client.PutAsync("/v1/registry/models/triage/aliases/champion", new StringContent("""{"version":1}"""));
        Assert.Equal(HttpStatusCode.OK, alias.StatusCode);
    }

    private static async Task<string> OutputAsync(HttpClient client, string model)
    {
        using var response = await client.PostAsync($"/v2/models/{model}/infer", new StringContent(RiskBody, Encoding.UTF8, "application/json"));
        var json = await ServerFixture.JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, json.ToString());
        return json.GetProperty("outputs").GetRawText();
    }

    private static async Task<string> RegistryAsync(HttpClient client)
    {
        var model = await ServerFixture.JsonAsync(await client.GetAsync("/v1/registry/models/triage"));
        return model.GetProperty("versions").GetRawText() + model.GetProperty("aliases").GetRawText();
    }

    private static Task<int> Cli(params string[] args)
    {
        var root = new System.CommandLine.RootCommand();
        foreach (var command in MedServe.Cli.BackupCommand.Create())
        {
            root.Add(command);
        }

        root.Add(MedServe.Cli.AuditCommand.Create());
        return root.Parse(args).InvokeAsync();
    }

    private static void CopyFolder(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }
}
