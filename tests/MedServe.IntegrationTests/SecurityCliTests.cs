using Microsoft.Extensions.DependencyInjection;
using MedServe.Compliance.Journal;
using System.CommandLine;
using System.Net;
using System.Text.Json;
using MedServe.Cli;
using MedServe.IntegrationTests.Support;
using Microsoft.Data.Sqlite;

namespace MedServe.IntegrationTests;

/// <summary><c>medserve keys</c> through a running server, and <c>medserve audit</c> on a data dir's files.</summary>
public sealed class SecurityCliTests
{
    private const string RiskBody = """{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}]}""";

    [Fact]
    public async Task An_admin_key_made_offline_is_installed_from_auth_admin_key_file_and_a_malformed_one_stops_the_start()
    {
        var folder = Path.Combine(Path.GetTempPath(), "medserve-admin-key-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        try
        {
            var (exit, generated) = await ServerProcess.RunAsync(folder, "keys", "generate");
            Assert.Equal(0, exit);
            var key = generated.Trim();
            Assert.Matches("^ms_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$", key);
            Assert.NotEqual(key, (await ServerProcess.RunAsync(folder, "keys", "generate")).Output.Trim());

            var file = Path.Combine(folder, "admin-key");
            await File.WriteAllTextAsync(file, key + "\n");
            await using (var server = await RunningServer.StartAsync(new Dictionary<string, string?> { ["MedServe:Auth:AdminKeyFile"] = file }))
            {
                // The key from the file is the admin: it makes keys. None was written into the data dir.
                Assert.Equal("", server.AdminKey);
                Assert.False(File.Exists(Path.Combine(server.Root, "admin.key")));
                using var admin = server.Client(key);
                using var created = await admin.PostAsync("/v1/keys", new StringContent("""{"name":"ward","scopes":["infer"]}""", System.Text.Encoding.UTF8, "application/json"));
                Assert.Equal(System.Net.HttpStatusCode.Created, created.StatusCode);
                using var other = server.Client(MedServe.Compliance.Access.ApiKeyStore.Generate());
                Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await other.GetAsync("/v1/keys")).StatusCode);
            }

            // Not a key: refused by setting name, its content never repeated.
            await File.WriteAllTextAsync(file, "hunter2-not-a-key");
            var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() =>
                RunningServer.StartAsync(new Dictionary<string, string?> { ["MedServe:Auth:AdminKeyFile"] = file }));
            Assert.Contains("Auth:AdminKeyFile holds not a MedServe API key", error.Message);
            Assert.DoesNotContain("hunter2", error.Message);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task Keys_are_created_listed_and_revoked_from_the_command_line_and_audit_verify_and_export_read_the_files()
    {
        var copy = Path.Combine(Path.GetTempPath(), "medserve-audit-copy-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using (var server = await RunningServer.StartAsync(new Dictionary<string, string?>()))
            {
                var url = server.HttpAddress.ToString().TrimEnd('/');
                Assert.Equal(0, await Run("keys", "create", "--name", "cli-ward", "--scopes", "infer:risk", "models:read", "--rate-limit", "5", "--server", url, "--api-key", server.AdminKey));
                Assert.Equal(0, await Run("keys", "list", "--server", url, "--api-key", server.AdminKey));
                Assert.NotEqual(0, await Run("keys", "create", "--name", "cli-bad", "--scopes", "root", "--server", url, "--api-key", server.AdminKey));
                Assert.NotEqual(0, await Run("keys", "list", "--server", url, "--api-key", "ms_0000_nope"));

                using var admin = server.Client(server.AdminKey);
                var key = JsonDocument.Parse(await admin.GetStringAsync("/v1/keys")).RootElement.GetProperty("keys").EnumerateArray()
                    .Single(k => k.GetProperty("name").GetString() == "cli-ward");
                Assert.Equal(["infer:risk", "models:read"], key.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()));
                Assert.Equal(5, key.GetProperty("requests_per_second").GetInt32());

                Assert.Equal(0, await Run("keys", "revoke", "cli-ward", "--server", url, "--api-key", server.AdminKey));
                Assert.NotEqual(0, await Run("keys", "revoke", "cli-ward", "--server", url, "--api-key", server.AdminKey));
                key = JsonDocument.Parse(await admin.GetStringAsync("/v1/keys")).RootElement.GetProperty("keys").EnumerateArray()
                    .Single(k => k.GetProperty("name").GetString() == "cli-ward");
                Assert.NotEqual(JsonValueKind.Null, key.GetProperty("revoked_at").ValueKind);

                for (var i = 0; i < 5; i++)
                {
                    Assert.Equal(HttpStatusCode.OK, (await admin.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody))).StatusCode);
                }

                var pinned = Path.Combine(server.Root, "secrets", "audit-signing.pub.pem");
                Assert.Equal(2, await Run("audit", "verify", "--data-dir", server.Root));
                Assert.Equal(0, await Run("audit", "verify", "--data-dir", server.Root, "--public-key", pinned));
                var export = Path.Combine(Path.GetTempPath(), $"medserve-export-{Guid.NewGuid():N}.ndjson");
                Assert.Equal(0, await Run("audit", "export", "--data-dir", server.Root, "--from", "2000-01-01T00:00:00Z", "--out", export));
                var events = File.ReadAllLines(export).Select(l => JsonDocument.Parse(l).RootElement).ToList();
                File.Delete(export);
                Assert.Equal(5, events.Count(e => e.GetProperty("subtype")[0].GetProperty("code").GetString() == "POST /v2/models/{model}/infer"));
                Assert.Contains(events, e => e.GetProperty("subtype")[0].GetProperty("code").GetString() == "DELETE /v1/keys/{name}");
                Assert.Equal(2, await Run("audit", "export", "--data-dir", server.Root, "--from", "last tuesday"));

                // Copy what an auditor would receive: the journal, its anchor and the public key (pinned by the auditor).
                await server.Services.GetRequiredService<AuditJournal>().Writer!.FlushAsync();
                Directory.CreateDirectory(Path.Combine(copy, "journal"));
                foreach (var file in Directory.GetFiles(Path.Combine(server.Root, "journal")).Select(Path.GetFileName)
                    .Select(f => Path.Combine("journal", f!)).Append("journal.anchor"))
                {
                    using var source = new FileStream(Path.Combine(server.Root, file), FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                    using var target = File.Create(Path.Combine(copy, file));
                    await source.CopyToAsync(target);
                }

                File.Copy(pinned, Path.Combine(copy, "pinned.pem"));
            }

            var pinnedCopy = Path.Combine(copy, "pinned.pem");
            Assert.Equal(0, await Run("audit", "verify", "--data-dir", copy, "--public-key", pinnedCopy));

            // One byte of an inference record changed: the chain no longer reaches the anchored head.
            var segment = Directory.GetFiles(Path.Combine(copy, "journal"), "*.seg").Order().First();
            var bytes = await File.ReadAllBytesAsync(segment);
            var at = bytes.AsSpan().IndexOf("POST /v2/models/{model}/infer"u8);
            Assert.True(at > 0);
            bytes[at] = (byte)'G';
            await File.WriteAllBytesAsync(segment, bytes);
            Assert.Equal(1, await Run("audit", "verify", "--data-dir", copy, "--public-key", pinnedCopy));
            Assert.Equal(2, await Run("audit", "verify", "--data-dir", Path.Combine(copy, "nothing-here"), "--public-key", pinnedCopy));
        }
        finally
        {
            if (Directory.Exists(copy))
            {
                Directory.Delete(copy, recursive: true);
            }
        }
    }

    [Fact]
    public async Task Keys_create_splits_scopes_on_spaces_and_commas_and_the_server_stores_what_was_sent()
    {
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>());
        var url = server.HttpAddress.ToString().TrimEnd('/');
        Assert.Equal(0, await Run("keys", "create", "--name", "spaced", "--scopes", "infer:risk models:read", "--server", url, "--api-key", server.AdminKey));
        Assert.Equal(0, await Run("keys", "create", "--name", "commas", "--scopes", "infer:risk,models:read", "audit:read", "--server", url, "--api-key", server.AdminKey));
        foreach (var bad in new[] { "infer:risk\0admin", "infer:../x", "infer:", "superuser", " , " })
        {
            Assert.Equal(2, await Run("keys", "create", "--name", "refused", "--scopes", bad, "--server", url, "--api-key", server.AdminKey));
        }

        using var admin = server.Client(server.AdminKey);
        var keys = JsonDocument.Parse(await admin.GetStringAsync("/v1/keys")).RootElement.GetProperty("keys").EnumerateArray()
            .ToDictionary(k => k.GetProperty("name").GetString()!, k => k.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()).ToList());
        Assert.Equal(["infer:risk", "models:read"], keys["spaced"]);
        Assert.Equal(["infer:risk", "models:read", "audit:read"], keys["commas"]);
        Assert.False(keys.ContainsKey("refused"));
    }

    private static Task<int> Run(params string[] args) =>
        new RootCommand { KeysCommand.Create(), AuditCommand.Create() }.Parse(args).InvokeAsync();
}
