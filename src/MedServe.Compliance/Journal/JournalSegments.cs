using System.Buffers.Binary;
using System.Globalization;
using System.IO.Hashing;
using System.Security.Cryptography;

namespace MedServe.Compliance.Journal;

/// <summary>A segment file's name, header and whole frames, read without taking anything from a writer.</summary>
internal static class JournalSegments
{
    public const string Extension = ".seg";

    public static string Name(long firstSequence) => string.Create(CultureInfo.InvariantCulture, $"journal-{firstSequence:D20}{Extension}");

    /// <summary>The folder's segments in sequence order (none when the folder does not exist: readers create nothing).</summary>
    public static List<(long First, string Path)> List(string folder) => List(folder, []);

    /// <summary>The segments of the journal's folder and of its archive folders, merged in sequence order (the journal's copy first where both hold one).</summary>
    public static List<(long First, string Path)> List(string folder, IReadOnlyList<string> archives)
    {
        var segments = new List<(long, string)>();
        var seen = new HashSet<long>();
        foreach (var where in archives.Prepend(folder))
        {
            if (!Directory.Exists(where))
            {
                continue;
            }

            foreach (var path in Directory.EnumerateFiles(where, "journal-*" + Extension))
            {
                var name = Path.GetFileNameWithoutExtension(path);
                if (long.TryParse(name.AsSpan("journal-".Length), NumberStyles.None, CultureInfo.InvariantCulture, out var first) && seen.Add(first))
                {
                    segments.Add((first, path));
                }
            }
        }

        segments.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        return segments;
    }

    /// <summary>The header's first sequence and the hash of the record before it; null for a file without a valid header.</summary>
    public static (long First, byte[] PreviousHash)? ReadHeader(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var header = new byte[JournalFormat.HeaderSize];
        if (file.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) < header.Length || !header.AsSpan(0, 8).SequenceEqual(JournalFormat.Magic))
        {
            return null;
        }

        return (BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(8)), header.AsSpan(16).ToArray());
    }

    public static byte[] Header(long firstSequence, ReadOnlySpan<byte> previousHash)
    {
        var header = new byte[JournalFormat.HeaderSize];
        JournalFormat.Magic.CopyTo(header);
        BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(8), firstSequence);
        previousHash.CopyTo(header.AsSpan(16));
        return header;
    }

    /// <summary>Frame header: body length and CRC-32 of the body.</summary>
    public static void WriteFrameHeader(Span<byte> destination, ReadOnlySpan<byte> body)
    {
        BinaryPrimitives.WriteInt32LittleEndian(destination, body.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], Crc32.HashToUInt32(body));
    }

    /// <summary>
    /// Reads a segment: its header, then each whole frame (length and CRC right) in order, handing
    /// the body, its hash and where it starts to <paramref name="visit"/> (which may stop the scan by
    /// returning false). Stops at the first frame that is not whole: a torn tail, or the zeros of
    /// preallocated space. Returns where whole frames end.
    /// </summary>
    public static SegmentScan Scan(string path, Func<ReadOnlyMemory<byte>, byte[], long, bool>? visit) => Scan(path, JournalFormat.HeaderSize, visit);

    /// <summary>As <see cref="Scan(string, Func{ReadOnlyMemory{byte}, byte[], long, bool}?)"/>, from a frame boundary a previous scan ended at (a reader that follows the tail).</summary>
    public static SegmentScan Scan(string path, long from, Func<ReadOnlyMemory<byte>, byte[], long, bool>? visit)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16);
        var header = new byte[JournalFormat.HeaderSize];
        if (file.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) < header.Length || !header.AsSpan(0, 8).SequenceEqual(JournalFormat.Magic))
        {
            return new SegmentScan(false, 0, [], JournalFormat.HeaderSize, 0, null, 0);
        }

        var first = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(8));
        var previous = header.AsSpan(16).ToArray();
        long offset = Math.Max(from, JournalFormat.HeaderSize);
        file.Position = offset;
        long records = 0;
        long lastSequence = first - 1;
        byte[]? lastHash = null;
        var frame = new byte[JournalFormat.FrameOverhead];
        var body = new byte[4096];
        while (file.ReadAtLeast(frame, frame.Length, throwOnEndOfStream: false) == frame.Length)
        {
            var length = BinaryPrimitives.ReadInt32LittleEndian(frame);
            if (length <= 0 || length > JournalFormat.MaxBodyBytes)
            {
                break;
            }

            if (body.Length < length)
            {
                body = new byte[Math.Max(length, body.Length * 2)];
            }

            if (file.ReadAtLeast(body.AsSpan(0, length), length, throwOnEndOfStream: false) < length
                || Crc32.HashToUInt32(body.AsSpan(0, length)) != BinaryPrimitives.ReadUInt32LittleEndian(frame.AsSpan(4)))
            {
                break;
            }

            var hash = SHA256.HashData(body.AsSpan(0, length));
            records++;
            lastSequence = JournalFormat.SequenceOf(body);
            lastHash = hash;
            if (visit is not null && !visit(body.AsMemory(0, length).ToArray(), hash, offset))
            {
                offset += JournalFormat.FrameOverhead + length;
                return new SegmentScan(true, first, previous, offset, records, lastHash, lastSequence);
            }

            offset += JournalFormat.FrameOverhead + length;
        }

        return new SegmentScan(true, first, previous, offset, records, lastHash, lastSequence);
    }
}

/// <summary>What a segment holds: whether its header is valid, its first sequence, the hash before it, where whole frames end.</summary>
internal sealed record SegmentScan(bool ValidHeader, long FirstSequence, byte[] PreviousHash, long End, long Records, byte[]? LastHash, long LastSequence);
