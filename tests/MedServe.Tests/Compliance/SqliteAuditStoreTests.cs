using System.Security.Cryptography;
using MedServe.Compliance.Audit;
using Microsoft.Data.Sqlite;

namespace MedServe.Tests.Compliance;

public sealed class SqliteAuditStoreTests : IAsyncLifetime
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "medserve-audit-" + Guid.NewGuid().ToString("N"));
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private SqliteAuditStore _log = null!;

    private string DbPath => Path.Combine(_root, "audit.db");

    public async Task InitializeAsync() => _log = await SqliteAuditStore.OpenAsync(DbPath, _key, checkpointEvery: 100);

    public async Task DisposeAsync()
    {
        await _log.DisposeAsync();
        SqliteConnection.ClearAllPools();
        Directory.Delete(_root, recursive: true);
        _key.Dispose();
    }

    [Fact]
    public async Task Concurrent_appends_are_group_committed_into_one_intact_chain()
    {
        await Task.WhenAll(Enumerable.Range(0, 500).Select(i => Task.Run(() => _log.AppendAsync(Event(i)))));

        var verdict = await _log.VerifyAsync();
        Assert.True(verdict.Intact, verdict.Problem);
        Assert.Equal(500, verdict.Records);
        Assert.True(_log.Commits < 500, $"{_log.Commits} commits for 500 records: no grouping");
        var records = await _log.ReadAsync(1, 1000);
        Assert.Equal(Enumerable.Range(1, 500).Select(i => (long)i), records.Select(r => r.Sequence));
        Assert.Equal(AuditRecord.Genesis, records[0].PreviousHash);
        Assert.Equal(records[0].Hash, records[1].PreviousHash);
    }

    [Fact]
    public async Task A_reopened_log_continues_the_same_chain()
    {
        await _log.AppendAsync(Event(1));
        await _log.DisposeAsync();
        _log = await SqliteAuditStore.OpenAsync(DbPath, _key);
        await _log.AppendAsync(Event(2));

        var verdict = await _log.VerifyAsync();
        Assert.True(verdict.Intact, verdict.Problem);
        Assert.Equal(2, verdict.Records);
    }

    [Theory]
    [InlineData("UPDATE audit_records SET actor = 'mallory' WHERE seq = 7;", 7, "record 7 was modified")]
    [InlineData("DELETE FROM audit_records WHERE seq = 7;", 7, "record 7 is missing (deleted)")]
    [InlineData("UPDATE audit_records SET seq = -seq WHERE seq IN (6, 7); UPDATE audit_records SET seq = 7 WHERE seq = -6; UPDATE audit_records SET seq = 6 WHERE seq = -7;", 6, "record 6 was modified")]
    public async Task Verification_names_the_first_tampered_record(string sql, long first, string problem)
    {
        for (var i = 0; i < 20; i++)
        {
            await _log.AppendAsync(Event(i));
        }

        await Tamper(sql);

        var verdict = await _log.VerifyAsync();
        Assert.False(verdict.Intact);
        Assert.Equal(first, verdict.FirstBadSequence);
        Assert.Contains(problem, verdict.Problem);
    }

    [Fact]
    public async Task An_inserted_record_with_a_valid_hash_of_its_own_breaks_the_chain()
    {
        for (var i = 0; i < 5; i++)
        {
            await _log.AppendAsync(Event(i));
        }

        // Forge record 6 after the fact, hashed correctly but chained to the wrong predecessor.
        var forged = new AuditEvent(DateTimeOffset.UnixEpoch, "mallory", "infer", "risk/1", "ok", "r-x", "10.0.0.1", "");
        var hash = AuditRecord.ComputeHash(6, forged, AuditRecord.Genesis);
        await Tamper($"INSERT INTO audit_records VALUES (6, 0, 'mallory', 'infer', 'risk/1', 'ok', 'r-x', '10.0.0.1', '', '{AuditRecord.Genesis}', '{hash}');");

        var verdict = await _log.VerifyAsync();
        Assert.Equal(6, verdict.FirstBadSequence);
        Assert.Contains("does not follow record 5", verdict.Problem);
    }

    [Fact]
    public async Task A_consistently_rewritten_chain_is_caught_by_the_signed_checkpoint()
    {
        for (var i = 0; i < 150; i++)
        {
            await _log.AppendAsync(Event(i));
        }

        // Rewrite record 50 and re-hash everything after it: the chain alone looks whole again.
        await Tamper("UPDATE audit_records SET actor = 'mallory' WHERE seq = 50;");
        var records = await _log.ReadAsync(1, 1000);
        var previous = AuditRecord.Genesis;
        foreach (var record in records)
        {
            var hash = AuditRecord.ComputeHash(record.Sequence, record.Event, previous);
            await Tamper($"UPDATE audit_records SET prev_hash = '{previous}', hash = '{hash}' WHERE seq = {record.Sequence};");
            previous = hash;
        }

        var verdict = await _log.VerifyAsync();
        Assert.False(verdict.Intact);
        Assert.Equal(100, verdict.FirstBadSequence);
        Assert.Contains("signed checkpoint at record 100", verdict.Problem);
    }

    [Fact]
    public void Patients_appear_only_as_stable_pseudonyms()
    {
        var pseudonyms = new Pseudonymizer(RandomNumberGenerator.GetBytes(32));

        var once = pseudonyms.Pseudonym("MRN-0012345");

        Assert.Equal(once, pseudonyms.Pseudonym("MRN-0012345"));
        Assert.NotEqual(once, pseudonyms.Pseudonym("MRN-0012346"));
        Assert.DoesNotContain("0012345", once, StringComparison.Ordinal);
        Assert.NotEqual(once, new Pseudonymizer(RandomNumberGenerator.GetBytes(32)).Pseudonym("MRN-0012345"));
    }

    private static AuditEvent Event(int i) =>
        new(DateTimeOffset.FromUnixTimeMilliseconds(1_795_000_000_000 + i), $"key-{i % 3}", "infer", "risk/1", "ok", $"req-{i}", "127.0.0.1", "");

    private async Task Tamper(string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={DbPath}");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }
}
