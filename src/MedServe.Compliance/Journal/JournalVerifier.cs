using System.Security.Cryptography;

namespace MedServe.Compliance.Journal;

/// <summary>What verification found: whole, or the first record that is not, and how.</summary>
public sealed record JournalVerdict(bool Intact, long Records, long Checkpoints, long? FirstBadSequence, string? Problem);

/// <summary>
/// Reads the journal's files and nothing else, read-only, creating nothing: a verifier must not
/// write to the evidence. It trusts a pinned public key and an anchored head, never a key or a
/// head found beside the journal.
/// </summary>
public static class JournalVerifier
{
    /// <summary>
    /// Walks every segment: headers continue the chain, frames are whole, sequences consecutive,
    /// each record holds its predecessor's hash, every checkpoint's signature verifies under
    /// <paramref name="publicKey"/>, and the chain reaches the anchor's head with the same hash.
    /// </summary>
    /// <remarks>
    /// Segments moved to <paramref name="archives"/> are read from there. A journal whose oldest
    /// records are in no folder given is whole only if its own chain says they were archived: an
    /// <see cref="ArchiveAction"/> record naming records 1 to at least the last one missing, with
    /// the hash of that record, which the first segment present must continue.
    /// </remarks>
    public static JournalVerdict Verify(string folder, ECDsa publicKey, JournalHead? anchor, IReadOnlyList<string>? archives = null)
    {
        var segments = JournalSegments.List(folder, archives ?? []);
        long expected = 1;
        var previous = new byte[JournalFormat.HashSize];
        long archivedThrough = 0;
        var archiveAccounted = false;
        byte[] previousOfFirst = [];
        if (segments.Count > 0 && segments[0].First > 1 && JournalSegments.ReadHeader(segments[0].Path) is { } start && start.First == segments[0].First)
        {
            // The oldest records are elsewhere: start from this segment's header, and require the chain to account for them.
            archivedThrough = start.First - 1;
            expected = start.First;
            previous = start.PreviousHash;
            previousOfFirst = start.PreviousHash;
        }

        long records = 0;
        long checkpoints = 0;
        byte[]? anchoredHash = null;
        JournalVerdict? bad = null;

        if (anchor is not null && anchor.CheckpointSequence > 0
            && !publicKey.VerifyData(JournalFormat.CheckpointMessage(anchor.CheckpointSequence, anchor.CheckpointHash), anchor.Signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation))
        {
            return new JournalVerdict(false, 0, 0, anchor.CheckpointSequence, "the anchor's checkpoint is not signed by the pinned key");
        }

        for (var i = 0; i < segments.Count && bad is null; i++)
        {
            var (first, path) = segments[i];
            var last = i == segments.Count - 1;
            var scan = JournalSegments.Scan(path, (body, hash, _) =>
            {
                var (sequence, entry, previousHash) = Decode(body, expected);
                if (sequence != expected)
                {
                    bad = new JournalVerdict(false, records, checkpoints, expected, sequence > expected
                        ? $"records {expected} to {sequence - 1} are missing (deleted)"
                        : $"record {sequence} appears where record {expected} belongs (inserted or reordered)");
                    return false;
                }

                if (!previousHash.AsSpan().SequenceEqual(previous))
                {
                    bad = new JournalVerdict(false, records, checkpoints, sequence, $"record {sequence} does not hold the hash of record {sequence - 1}: one of them was modified");
                    return false;
                }

                if (entry!.Kind == JournalKind.Checkpoint)
                {
                    if (!publicKey.VerifyData(JournalFormat.CheckpointMessage(sequence - 1, previous), entry.Payload.Span, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation))
                    {
                        bad = new JournalVerdict(false, records, checkpoints, sequence, $"checkpoint {sequence} is not signed by the pinned key: the chain before it was rewritten or re-signed");
                        return false;
                    }

                    checkpoints++;
                }

                if (archivedThrough > 0 && entry.Kind == JournalKind.Action && entry.Action == ArchiveAction
                    && ArchivedThrough(entry.Resource) is { } through && through >= archivedThrough
                    && (through != archivedThrough || entry.Outcome == Convert.ToHexStringLower(previousOfFirst)))
                {
                    archiveAccounted = true;
                }

                if (anchor is not null && sequence == anchor.Sequence)
                {
                    anchoredHash = hash;
                }

                if (anchor is not null && sequence == anchor.CheckpointSequence && !hash.AsSpan().SequenceEqual(anchor.CheckpointHash))
                {
                    bad = new JournalVerdict(false, records, checkpoints, sequence, $"record {sequence} differs from the signed checkpoint in the anchor: it was rewritten");
                    return false;
                }

                previous = hash;
                records++;
                expected++;
                return true;
            });

            if (bad is not null)
            {
                break;
            }

            if (!scan.ValidHeader || scan.FirstSequence != first)
            {
                bad = new JournalVerdict(false, records, checkpoints, first, $"segment {Path.GetFileName(path)} has no valid header");
            }
            else if (scan.FirstSequence != expected - scan.Records)
            {
                bad = new JournalVerdict(false, records, checkpoints, scan.FirstSequence, $"segment {Path.GetFileName(path)} starts at record {scan.FirstSequence} where record {expected - scan.Records} belongs");
            }
            else if (!last && !TailIsEmpty(path, scan.End))
            {
                bad = new JournalVerdict(false, records, checkpoints, expected, $"segment {Path.GetFileName(path)} holds bytes after its last whole record, inside the chain");
            }
        }

        if (bad is not null)
        {
            return bad;
        }

        if (archivedThrough > 0 && !archiveAccounted)
        {
            return new JournalVerdict(false, records, checkpoints, 1,
                $"records 1 to {archivedThrough} are missing (deleted), and no archive record in the journal accounts for them (give the archive folder with --archive)");
        }

        if (anchor is not null && anchor.Sequence > 0)
        {
            if (expected - 1 < anchor.Sequence)
            {
                return new JournalVerdict(false, records, checkpoints, expected, $"the journal ends at record {expected - 1} but its anchor records {anchor.Sequence} written: the last records were deleted");
            }

            if (anchoredHash is null || !anchoredHash.AsSpan().SequenceEqual(anchor.Hash))
            {
                return new JournalVerdict(false, records, checkpoints, anchor.Sequence, $"record {anchor.Sequence} differs from the anchored head: it was rewritten");
            }
        }

        return new JournalVerdict(true, records, checkpoints, null, null);
    }

    /// <summary>The action of the record the writer appends before it moves segments to the archive: resource "records 1-K", outcome the hex hash of record K.</summary>
    public const string ArchiveAction = "archive journal";

    internal static long? ArchivedThrough(string resource) =>
        resource.StartsWith("records 1-", StringComparison.Ordinal)
        && long.TryParse(resource.AsSpan("records 1-".Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var through)
            ? through
            : null;

    /// <summary>Records from <paramref name="fromSequence"/> on, at most <paramref name="limit"/>, up to <paramref name="throughSequence"/>.</summary>
    public static IReadOnlyList<JournalRecord> Read(string folder, long fromSequence, int limit, long throughSequence = long.MaxValue, IReadOnlyList<string>? archives = null)
    {
        var records = new List<JournalRecord>();
        var segments = JournalSegments.List(folder, archives ?? []);
        var start = segments.FindLastIndex(s => s.First <= fromSequence);
        for (var i = Math.Max(0, start); i < segments.Count && records.Count < limit; i++)
        {
            JournalSegments.Scan(segments[i].Path, (body, hash, _) =>
            {
                var sequence = JournalFormat.SequenceOf(body.Span);
                if (sequence > throughSequence)
                {
                    return false;
                }

                if (sequence >= fromSequence)
                {
                    var (_, entry, previousHash) = JournalFormat.Decode(body.Span);
                    records.Add(new JournalRecord(sequence, entry, previousHash, hash));
                }

                return records.Count < limit;
            });
        }

        return records;
    }

    /// <summary>The hash of one record, or null when the journal does not hold it.</summary>
    internal static byte[]? HashAt(string folder, long sequence)
    {
        var segments = JournalSegments.List(folder);
        var index = segments.FindLastIndex(s => s.First <= sequence);
        if (index < 0)
        {
            return null;
        }

        byte[]? found = null;
        JournalSegments.Scan(segments[index].Path, (body, hash, _) =>
        {
            var at = JournalFormat.SequenceOf(body.Span);
            if (at == sequence)
            {
                found = hash;
            }

            return at < sequence;
        });
        return found;
    }

    private static (long, JournalEntry?, byte[]) Decode(ReadOnlyMemory<byte> body, long expected)
    {
        try
        {
            var (sequence, entry, previousHash) = JournalFormat.Decode(body.Span);
            return (sequence, entry, previousHash);
        }
        catch (FormatException)
        {
            // A whole frame whose body does not parse was written by someone else.
            return (expected, new JournalEntry(default, 0, "", "", "", "", "", "", ""), []);
        }
    }

    private static bool TailIsEmpty(string path, long end)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16);
        file.Position = end;
        var buffer = new byte[1 << 16];
        int read;
        while ((read = file.Read(buffer)) > 0)
        {
            if (buffer.AsSpan(0, read).ContainsAnyExcept((byte)0))
            {
                return false;
            }
        }

        return true;
    }
}
