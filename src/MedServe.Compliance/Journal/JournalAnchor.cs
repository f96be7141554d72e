using System.Buffers.Binary;
using System.IO.Hashing;

namespace MedServe.Compliance.Journal;

/// <summary>
/// The newest durable head of the chain, and the newest signed checkpoint: what a verifier needs to
/// tell a journal whose last records (or all of them) were deleted from one that ends where it ended.
/// </summary>
public sealed record JournalHead(long Sequence, byte[] Hash, long CheckpointSequence, byte[] CheckpointHash, byte[] Signature);

/// <summary>
/// Where the head is kept beyond the journal's own folder. The file lives at a second path that
/// an attacker with write access to the data dir alone cannot reach (Journal:AnchorPath): two
/// alternating slots, each with a CRC, so a torn write leaves the other slot whole. Updated after
/// every durable batch, without an fsync of its own: it may lag the journal, never lead it.
/// </summary>
public sealed class JournalAnchor : IDisposable
{
    private const int SlotSize = 256;
    private readonly FileStream? _file;
    private long _writes;

    private JournalAnchor(string path, FileStream? file)
    {
        Path = path;
        _file = file;
    }

    public string Path { get; }

    /// <summary>Opens the anchor for the writer, creating it (0600) if it is new.</summary>
    public static JournalAnchor OpenForWriting(string path)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        var options = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.Read };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        var anchor = new JournalAnchor(path, new FileStream(path, options));
        anchor._writes = anchor.Read() is { } head ? head.Sequence : 0;
        return anchor;
    }

    /// <summary>Reads the newest whole slot of an anchor file; null when the file is missing or holds none.</summary>
    public static JournalHead? ReadFile(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        return ReadSlots(file);
    }

    public JournalHead? Read() => _file is null ? null : ReadSlots(_file);

    /// <summary>Overwrites the older slot.</summary>
    public void Write(JournalHead head)
    {
        Span<byte> slot = stackalloc byte[SlotSize];
        slot.Clear();
        BinaryPrimitives.WriteInt64LittleEndian(slot, head.Sequence);
        head.Hash.CopyTo(slot[8..]);
        BinaryPrimitives.WriteInt64LittleEndian(slot[40..], head.CheckpointSequence);
        head.CheckpointHash.CopyTo(slot[48..]);
        BinaryPrimitives.WriteInt32LittleEndian(slot[80..], head.Signature.Length);
        head.Signature.CopyTo(slot[84..]);
        BinaryPrimitives.WriteUInt32LittleEndian(slot[(SlotSize - 4)..], Crc32.HashToUInt32(slot[..(SlotSize - 4)]));
        RandomAccess.Write(_file!.SafeFileHandle, slot, (_writes++ % 2) * SlotSize);
    }

    public void Dispose() => _file?.Dispose();

    private static JournalHead? ReadSlots(FileStream file)
    {
        JournalHead? best = null;
        Span<byte> slot = stackalloc byte[SlotSize];
        for (var i = 0; i < 2; i++)
        {
            if (RandomAccess.Read(file.SafeFileHandle, slot, i * SlotSize) < SlotSize
                || Crc32.HashToUInt32(slot[..(SlotSize - 4)]) != BinaryPrimitives.ReadUInt32LittleEndian(slot[(SlotSize - 4)..]))
            {
                continue;
            }

            var signatureLength = BinaryPrimitives.ReadInt32LittleEndian(slot[80..]);
            if (signatureLength is < 0 or > SlotSize - 88)
            {
                continue;
            }

            var head = new JournalHead(
                BinaryPrimitives.ReadInt64LittleEndian(slot), slot.Slice(8, 32).ToArray(),
                BinaryPrimitives.ReadInt64LittleEndian(slot[40..]), slot.Slice(48, 32).ToArray(), slot.Slice(84, signatureLength).ToArray());
            if (best is null || head.Sequence > best.Sequence)
            {
                best = head;
            }
        }

        return best;
    }
}
