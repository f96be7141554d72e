using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using MedServe.Compliance.Journal;
using MedServe.IntegrationTests.Support;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace MedServe.IntegrationTests;

/// <summary>The cut-over from audit.db to the journal, and the refusal limit per client address.</summary>
public sealed class JournalCutOverTests
{
    [Fact]
    public async Task The_records_of_an_old_audit_db_are_imported_into_the_journal_in_order_and_the_file_kept_aside()
    {
        var root = Path.Combine(Path.GetTempPath(), "medserve-cutover-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(root);
        try
        {
            var database = Path.Combine(root, "audit.db");
            await WriteLegacyAuditDbAsync(database,
            [
                (1_790_000_000_000, "key:admin", "POST /v2/models/{model}/infer", "risk/1", "200", "old-1", "10.0.0.5", "ab12"),
                (1_790_000_000_500, "anonymous", "GET /v2/models/{model}", "risk", "401", "old-2", "10.0.0.6", ""),
                (1_790_000_001_000, "key:ops", "DELETE /v1/keys/{name}", "ward", "204", "old-3", "10.0.0.5", ""),
            ]);

            await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>(), root: root);
            var journal = server.Services.GetRequiredService<AuditJournal>();
            await journal.Writer!.FlushAsync();
            var records = JournalVerifier.Read(journal.Folder, 1, 100).Where(r => r.Entry.Kind != JournalKind.Checkpoint).ToList();

            Assert.Equal(["old-1", "old-2", "old-3"], records.Take(3).Select(r => r.Entry.RequestId));
            Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(1_790_000_000_500), records[1].Entry.Time);
            Assert.Equal(("anonymous", "GET /v2/models/{model}", "risk", "401", "10.0.0.6"),
                (records[1].Entry.Actor, records[1].Entry.Action, records[1].Entry.Resource, records[1].Entry.Outcome, records[1].Entry.ClientAddress));
            Assert.Equal("ab12", records[0].Entry.PatientPseudonym);
            var migration = records[3].Entry;
            Assert.Equal(("system", "migrate audit.db"), (migration.Actor, migration.Action));
            Assert.StartsWith("3 records imported; the old chain checked", migration.Outcome);

            Assert.False(File.Exists(database));
            Assert.True(File.Exists(database + ".migrated"));
            Assert.True(journal.Verify().Intact);
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task An_address_past_its_refusals_is_answered_429_before_authentication_and_costs_no_journal_record()
    {
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?> { ["MedServe:Limits:RefusalsPerSecondPerAddress"] = "1" });
        var journal = server.Services.GetRequiredService<AuditJournal>();
        using var stranger = server.Client("ms_abcdef_nope");
        await journal.Writer!.FlushAsync();
        var before = journal.Writer.DurableSequence;

        var watch = Stopwatch.StartNew();
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 30; i++)
        {
            using var response = await stranger.GetAsync("/v2/models/risk");
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                Assert.Equal("1", response.Headers.GetValues("Retry-After").Single());
                Assert.Contains("RefusalsPerSecondPerAddress", await response.Content.ReadAsStringAsync());
            }
        }

        // A burst of five, then one per second: however slow this machine, most of 30 are refused unread.
        var unauthorized = statuses.Count(s => s == HttpStatusCode.Unauthorized);
        Assert.InRange(unauthorized, 5, 5 + (int)Math.Ceiling(watch.Elapsed.TotalSeconds) + 1);
        Assert.Equal(30 - unauthorized, statuses.Count(s => s == HttpStatusCode.TooManyRequests));

        await journal.Writer.FlushAsync();
        var refusals = JournalVerifier.Read(journal.Folder, before + 1, 1000).Count(r => r.Entry.Kind == JournalKind.Refusal);
        Assert.Equal(unauthorized, refusals);
    }

    /// <summary>The old store's layout and hash, written here independently: SHA-256 over "len:field|" for each field, UTF-16 lengths.</summary>
    private static async Task WriteLegacyAuditDbAsync(string path, (long TimeMs, string Actor, string Action, string Resource, string Outcome, string RequestId, string Client, string Patient)[] rows)
    {
        await using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        await connection.OpenAsync();
        await using var create = connection.CreateCommand();
        create.CommandText = """
            CREATE TABLE audit_records (seq BIGINT PRIMARY KEY, time_ms BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, resource TEXT NOT NULL,
                outcome TEXT NOT NULL, request_id TEXT NOT NULL, client TEXT NOT NULL, patient TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
            CREATE TABLE audit_checkpoints (seq BIGINT PRIMARY KEY, hash TEXT NOT NULL, signature TEXT NOT NULL);
            """;
        await create.ExecuteNonQueryAsync();
        var previous = new string('0', 64);
        for (var i = 0; i < rows.Length; i++)
        {
            var r = rows[i];
            string[] fields = [(i + 1).ToString(CultureInfo.InvariantCulture), r.TimeMs.ToString(CultureInfo.InvariantCulture), r.Actor, r.Action, r.Resource, r.Outcome, r.RequestId, r.Client, r.Patient, previous];
            var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Concat(fields.Select(f => $"{f.Length}:{f}|")))));
            await using var insert = connection.CreateCommand();
            insert.CommandText = "INSERT INTO audit_records VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11);";
            object[] values = [i + 1, r.TimeMs, r.Actor, r.Action, r.Resource, r.Outcome, r.RequestId, r.Client, r.Patient, previous, hash];
            for (var v = 0; v < values.Length; v++)
            {
                insert.Parameters.AddWithValue($"${v + 1}", values[v]);
            }

            await insert.ExecuteNonQueryAsync();
            previous = hash;
        }
    }
}
