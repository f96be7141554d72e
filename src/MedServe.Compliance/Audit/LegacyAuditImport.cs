using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using MedServe.Compliance.Journal;
using Microsoft.Data.Sqlite;

namespace MedServe.Compliance.Audit;

/// <summary>
/// The cut-over from the SQLite audit trail (audit.db, before the journal) to the journal: on the
/// first start with an empty journal, every old record is copied into the new chain in order, with
/// its original time and fields, then one record says how many came over and whether the old chain
/// checked; audit.db is then renamed audit.db.migrated and kept as evidence. The old file is opened
/// read-only: the import never writes to it.
/// </summary>
public static class LegacyAuditImport
{
    public const string FileName = "audit.db";

    public sealed record Result(long Records, string Verdict);

    /// <summary>Imports <paramref name="database"/> when it exists and the journal is empty; null when there was nothing to do.</summary>
    public static async Task<Result?> RunAsync(string database, AuditJournal journal, TimeProvider time)
    {
        if (!File.Exists(database) || journal.Writer is not { DurableSequence: 0 })
        {
            return null;
        }

        var builder = new SqliteConnectionStringBuilder { DataSource = database, Mode = SqliteOpenMode.ReadOnly };
        long count = 0;
        string? broken = null;
        var previous = new string('0', 64);
        var appends = new List<Task<long>>();
        await using (var connection = new SqliteConnection(builder.ToString()))
        {
            await connection.OpenAsync().ConfigureAwait(false);
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT seq, time_ms, actor, action, resource, outcome, request_id, client, patient, prev_hash, hash FROM audit_records ORDER BY seq;";
            await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
            while (await reader.ReadAsync().ConfigureAwait(false))
            {
                var sequence = reader.GetInt64(0);
                var fields = new string[7];
                for (var i = 0; i < fields.Length; i++)
                {
                    fields[i] = reader.GetString(i + 2);
                }

                var timeMs = reader.GetInt64(1);
                if (broken is null && (sequence != count + 1 || reader.GetString(9) != previous || LegacyHash(sequence, timeMs, fields, previous) != reader.GetString(10)))
                {
                    broken = $"the old chain does not check at record {sequence}";
                }

                previous = reader.GetString(10);
                count++;
                appends.Add(journal.AppendAsync(new JournalEntry(DateTimeOffset.FromUnixTimeMilliseconds(timeMs), JournalKind.Action,
                    fields[0], fields[1], fields[2], fields[3], fields[4], fields[5], fields[6])));
                if (appends.Count >= 4096)
                {
                    await Task.WhenAll(appends).ConfigureAwait(false);
                    appends.Clear();
                }
            }
        }

        await Task.WhenAll(appends).ConfigureAwait(false);
        var verdict = broken ?? "the old chain checked (hashes only: its checkpoints were signed with a key in the data dir)";
        await journal.AppendAsync(new JournalEntry(time.GetUtcNow(), JournalKind.Action, "system", "migrate audit.db", FileName,
            string.Create(CultureInfo.InvariantCulture, $"{count} records imported; {verdict}"), "", "", "")).ConfigureAwait(false);

        foreach (var suffix in new[] { "", "-wal", "-shm" })
        {
            if (File.Exists(database + suffix))
            {
                File.Move(database + suffix, database + ".migrated" + suffix, overwrite: false);
            }
        }

        return new Result(count, verdict);
    }

    /// <summary>The old store's hash, only to report whether the imported chain checked: length-prefixed UTF-16 text, SHA-256 over its UTF-8.</summary>
    private static string LegacyHash(long sequence, long timeMs, string[] f, string previous)
    {
        var text = new StringBuilder();
        foreach (var field in new[] { sequence.ToString(CultureInfo.InvariantCulture), timeMs.ToString(CultureInfo.InvariantCulture), f[0], f[1], f[2], f[3], f[4], f[5], f[6], previous })
        {
            text.Append(field.Length.ToString(CultureInfo.InvariantCulture)).Append(':').Append(field).Append('|');
        }

        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }
}
