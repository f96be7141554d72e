using System.Security.Cryptography;
using MedServe.Compliance.Journal;
using Microsoft.Extensions.Time.Testing;

namespace MedServe.Tests.Compliance;

/// <summary>The journal on real files: format, chain, group commit, rollover, crash recovery and every way of hiding a record.</summary>
public sealed class InferenceJournalTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "medserve-journal-" + Guid.NewGuid().ToString("N"));
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 1, 8, 0, 0, TimeSpan.Zero));

    private string Folder => Path.Combine(_root, "journal");

    private string AnchorPath => Path.Combine(_root, "elsewhere", "journal.anchor");

    public void Dispose()
    {
        _key.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task Concurrent_appends_are_group_committed_into_one_intact_chain()
    {
        await using (var journal = Open())
        {
            var sequences = await Task.WhenAll(Enumerable.Range(0, 2000).Select(i => Task.Run(() => journal.AppendAsync(Entry(i)))));

            Assert.Equal(2000, sequences.Distinct().Count());
            Assert.True(journal.Commits < 2000, $"{journal.Commits} commits for 2000 records: no group commit");
            Assert.All(sequences, s => Assert.InRange(s, 1, journal.DurableSequence));
        }

        var verdict = Verify();
        Assert.True(verdict.Intact, verdict.Problem);
        Assert.Equal(2000 + verdict.Checkpoints, verdict.Records);
        Assert.True(verdict.Checkpoints >= 1);
    }

    [Fact]
    public async Task A_record_reads_back_field_for_field()
    {
        var entry = Entry(7) with { ClientRequestId = "client-7", Model = "risk", Version = "2", Experiment = "risk-v2", Arm = "candidate", LatencyMicroseconds = 1234, Payload = new byte[] { 1, 2, 3, 250 } };
        await using (var journal = Open())
        {
            await journal.AppendAsync(entry);
        }

        var record = JournalVerifier.Read(Folder, 1, 10).Single(r => r.Entry.Kind != JournalKind.Checkpoint);
        Assert.Equal(entry with { Payload = default }, record.Entry with { Payload = default });
        Assert.Equal([1, 2, 3, 250], record.Entry.Payload.ToArray());
        var bytes = File.ReadAllBytes(Segments()[0]);
        var length = BitConverter.ToInt32(bytes, JournalFormat.HeaderSize);
        Assert.Equal(SHA256.HashData(bytes.AsSpan(JournalFormat.HeaderSize + JournalFormat.FrameOverhead, length)), record.Hash);
    }

    [Fact]
    public async Task A_torn_frame_at_the_tail_is_dropped_and_appending_goes_on()
    {
        await using (var journal = Open())
        {
            await Task.WhenAll(Enumerable.Range(0, 50).Select(i => journal.AppendAsync(Entry(i))));
        }

        // A crash in the middle of a write: a frame header that promises more than arrived.
        var segment = Segments()[^1];
        var end = WholeFramesEnd(segment);
        using (var file = new FileStream(segment, FileMode.Open, FileAccess.Write))
        {
            file.Position = end;
            file.Write([200, 0, 0, 0, 9, 9, 9, 9, 1, 2, 3]);
        }

        await using (var journal = Open())
        {
            await journal.AppendAsync(Entry(99));
        }

        var verdict = Verify();
        Assert.True(verdict.Intact, verdict.Problem);
        Assert.Contains(JournalVerifier.Read(Folder, 1, 1000), r => r.Entry.RequestId == "req-99");
    }

    [Fact]
    public async Task Deleting_the_last_records_is_detected_by_the_server_and_the_verifier()
    {
        await using (var journal = Open())
        {
            for (var i = 0; i < 20; i++)
            {
                await journal.AppendAsync(Entry(i)); // one batch each, most of them after the last checkpoint
            }
        }

        var segment = Segments()[^1];
        var records = JournalVerifier.Read(Folder, 1, 1000);
        TruncateAfter(segment, records[^3].Sequence);

        var refused = Assert.Throws<JournalUnavailableException>(() => Open());
        Assert.Contains("records were deleted", refused.Message);
        var verdict = Verify();
        Assert.False(verdict.Intact);
        Assert.Contains("the last records were deleted", verdict.Problem);
    }

    [Fact]
    public async Task Deleting_every_segment_is_detected()
    {
        await using (var journal = Open())
        {
            await journal.AppendAsync(Entry(1));
        }

        foreach (var segment in Segments())
        {
            File.Delete(segment);
        }

        Assert.Throws<JournalUnavailableException>(() => Open());
        var verdict = JournalVerifier.Verify(Folder, _key, JournalAnchor.ReadFile(AnchorPath));
        Assert.False(verdict.Intact);
        Assert.Contains("ends at record 0", verdict.Problem);
    }

    [Fact]
    public async Task A_record_rewritten_with_recomputed_hashes_and_no_checkpoints_is_detected()
    {
        await using (var journal = Open())
        {
            for (var i = 0; i < 10; i++)
            {
                await journal.AppendAsync(Entry(i));
            }
        }

        // The attacker rebuilds the whole chain with one outcome changed and the checkpoints dropped.
        var original = JournalVerifier.Read(Folder, 1, 1000);
        var forged = original.Where(r => r.Entry.Kind != JournalKind.Checkpoint)
            .Select(r => r.Entry.RequestId == "req-3" ? r.Entry with { Outcome = "403" } : r.Entry).ToList();
        RewriteChain(forged);

        var verdict = Verify();
        Assert.False(verdict.Intact);
    }

    [Fact]
    public async Task A_chain_re_signed_with_another_key_fails_under_the_pinned_key()
    {
        using var attacker = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        await using (var journal = InferenceJournal.Open(new JournalOptions { Folder = Folder, AnchorPath = Path.Combine(_root, "attacker.anchor") }, attacker, _time))
        {
            await journal.AppendAsync(Entry(1));
        }

        var verdict = JournalVerifier.Verify(Folder, _key, null);
        Assert.False(verdict.Intact);
        Assert.Contains("not signed by the pinned key", verdict.Problem);
        Assert.True(JournalVerifier.Verify(Folder, attacker, null).Intact);
    }

    [Fact]
    public async Task Segments_roll_and_the_chain_runs_across_them()
    {
        await using (var journal = Open(segmentBytes: 4096))
        {
            for (var i = 0; i < 200; i++)
            {
                await journal.AppendAsync(Entry(i));
                _time.Advance(TimeSpan.FromMilliseconds(300)); // a checkpoint every few records
            }
        }

        Assert.True(Segments().Count > 5, $"{Segments().Count} segments");
        var verdict = Verify();
        Assert.True(verdict.Intact, verdict.Problem);
        Assert.True(verdict.Checkpoints >= 50, $"{verdict.Checkpoints} checkpoints");
        Assert.Equal(200, JournalVerifier.Read(Folder, 1, 10_000).Count(r => r.Entry.Kind != JournalKind.Checkpoint));

        // A middle segment removed: the verifier names the gap.
        File.Delete(Segments()[2]);
        var gap = Verify();
        Assert.False(gap.Intact);
        Assert.Contains("missing", gap.Problem);
    }

    [Fact]
    public async Task Old_segments_move_to_the_archive_with_a_record_that_accounts_for_them()
    {
        var archive = Path.Combine(_root, "cold");
        await using (var journal = Open(segmentBytes: 4096))
        {
            for (var i = 0; i < 120; i++)
            {
                await journal.AppendAsync(Entry(i));
                _time.Advance(TimeSpan.FromMinutes(1));
            }

            // Records older than an hour ago: the first hour's segments, never the one being written.
            var moved = await journal.ArchiveAsync(_time.GetUtcNow() - TimeSpan.FromHours(1), archive);
            Assert.InRange(moved, 2, Segments().Count + moved - 1);
            Assert.Equal(moved, Directory.GetFiles(archive, "*.seg").Length);
            Assert.Equal(0, await journal.ArchiveAsync(_time.GetUtcNow() - TimeSpan.FromHours(1), archive));
            await journal.AppendAsync(Entry(999));
        }

        // The journal alone verifies: its own chain says which records went, with the hash of the last.
        var alone = Verify();
        Assert.True(alone.Intact, alone.Problem);
        var withArchive = JournalVerifier.Verify(Folder, _key, JournalAnchor.ReadFile(AnchorPath), [archive]);
        Assert.True(withArchive.Intact, withArchive.Problem);
        Assert.True(withArchive.Records > alone.Records);
        Assert.Equal(121, AuditRecordsIn(Folder, archive));

        // The oldest live segment deleted as well: the archive record no longer accounts for the gap.
        File.Delete(Segments()[0]);
        var deleted = Verify();
        Assert.False(deleted.Intact);
        Assert.Contains("missing", deleted.Problem);
    }

    [Fact]
    public async Task The_tail_reader_follows_the_journal_across_rolls_and_archives_without_loss_or_repeat()
    {
        var archive = Path.Combine(_root, "cold");
        var seen = new List<long>();
        await using (var journal = Open(segmentBytes: 4096))
        {
            var reader = new JournalTailReader(Folder, 1, [archive]);
            for (var round = 0; round < 4; round++)
            {
                for (var i = 0; i < 40; i++)
                {
                    await journal.AppendAsync(Entry((round * 40) + i));
                    _time.Advance(TimeSpan.FromMinutes(1));
                }

                // Pages smaller than what arrived, so the reader stops mid-segment and resumes there.
                IReadOnlyList<JournalRecord> page;
                while ((page = reader.Read(7, journal.DurableSequence)).Count > 0)
                {
                    seen.AddRange(page.Select(r => r.Sequence));
                }

                if (round == 1)
                {
                    await journal.ArchiveAsync(_time.GetUtcNow() - TimeSpan.FromMinutes(30), archive);
                }
            }

            Assert.Equal(Enumerable.Range(1, (int)journal.DurableSequence).Select(i => (long)i), seen);
        }
    }

    /// <summary>Inference records across the journal and its archive.</summary>
    private static int AuditRecordsIn(string folder, string archive) =>
        JournalSegments.List(folder, [archive]).Sum(s =>
        {
            var count = 0;
            JournalSegments.Scan(s.Path, (body, _, _) =>
            {
                count += JournalFormat.Decode(body.Span).Entry.Kind == JournalKind.Inference ? 1 : 0;
                return true;
            });
            return count;
        });

    [Fact]
    public async Task Verification_writes_nothing_and_creates_nothing()
    {
        var missing = Path.Combine(_root, "nothing-here");
        Assert.True(JournalVerifier.Verify(missing, _key, null).Intact);
        Assert.False(Directory.Exists(missing));

        await using (var journal = Open())
        {
            await journal.AppendAsync(Entry(1));
        }

        var before = Segments().Select(f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f)))).ToList();
        var files = Directory.GetFiles(Folder).Length;
        Assert.True(Verify().Intact);
        Assert.Equal(before, Segments().Select(f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f)))));
        Assert.Equal(files, Directory.GetFiles(Folder).Length);
    }

    [Fact]
    public async Task A_full_queue_is_refused_at_once()
    {
        await using var journal = Open(queueCapacity: 0);

        await Assert.ThrowsAsync<JournalFullException>(() => journal.AppendAsync(Entry(1)));
    }

    private InferenceJournal Open(long segmentBytes = 64L << 20, int queueCapacity = 65_536) =>
        InferenceJournal.Open(new JournalOptions { Folder = Folder, AnchorPath = AnchorPath, SegmentBytes = segmentBytes, QueueCapacity = queueCapacity }, _key, _time);

    private JournalVerdict Verify() => JournalVerifier.Verify(Folder, _key, JournalAnchor.ReadFile(AnchorPath));

    private List<string> Segments() => Directory.GetFiles(Folder, "*.seg").Order(StringComparer.Ordinal).ToList();

    private JournalEntry Entry(int i) =>
        new(_time.GetUtcNow(), JournalKind.Inference, "key:ward", "POST /v2/models/{model}/infer", "risk/1", "200", $"req-{i}", "127.0.0.1", "pseudonym-" + i);

    private static long WholeFramesEnd(string segment)
    {
        var bytes = File.ReadAllBytes(segment);
        long at = JournalFormat.HeaderSize;
        while (at + 8 <= bytes.Length && BitConverter.ToInt32(bytes, (int)at) is > 0 and var length)
        {
            at += 8 + length;
        }

        return at;
    }

    /// <summary>Zeroes every frame after the one holding <paramref name="sequence"/>, as a careful attacker would.</summary>
    private static void TruncateAfter(string segment, long sequence)
    {
        var bytes = File.ReadAllBytes(segment);
        long at = JournalFormat.HeaderSize;
        while (BitConverter.ToInt32(bytes, (int)at) is > 0 and var length)
        {
            var current = BitConverter.ToInt64(bytes, (int)at + 8);
            at += 8 + length;
            if (current == sequence)
            {
                break;
            }
        }

        Array.Clear(bytes, (int)at, bytes.Length - (int)at);
        File.WriteAllBytes(segment, bytes);
    }

    /// <summary>Writes a fresh, self-consistent chain of these entries over the journal, keeping its anchor.</summary>
    private void RewriteChain(IReadOnlyList<JournalEntry> entries)
    {
        foreach (var segment in Segments())
        {
            File.Delete(segment);
        }

        var previous = new byte[32];
        using var file = new FileStream(Path.Combine(Folder, "journal-00000000000000000001.seg"), FileMode.CreateNew);
        var header = new byte[JournalFormat.HeaderSize];
        JournalFormat.Magic.CopyTo(header);
        BitConverter.TryWriteBytes(header.AsSpan(8), 1L);
        file.Write(header);
        long sequence = 0;
        foreach (var entry in entries)
        {
            var body = JournalFormat.EncodeBody(entry);
            JournalFormat.Seal(body, ++sequence, previous);
            var frame = new byte[8];
            BitConverter.TryWriteBytes(frame, body.Length);
            BitConverter.TryWriteBytes(frame.AsSpan(4), System.IO.Hashing.Crc32.HashToUInt32(body));
            file.Write(frame);
            file.Write(body);
            previous = SHA256.HashData(body);
        }
    }
}
