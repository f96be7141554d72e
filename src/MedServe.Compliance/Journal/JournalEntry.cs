using System.Buffers.Binary;
using System.Text;

namespace MedServe.Compliance.Journal;

/// <summary>What a record is: an inference, an administrative action, a refused request, or a signed checkpoint of the chain.</summary>
public enum JournalKind : byte
{
    Inference = 1,
    Action = 2,
    Refusal = 3,
    Checkpoint = 4,

    /// <summary>A clinical outcome joined to a prediction: the prediction's request id, its model and version; the label, encrypted, in the payload.</summary>
    Outcome = 5,
}

/// <summary>
/// One journal record's content: the audit record and, for an inference, the prediction record
/// at once. The clear fields carry no patient data (the patient is a pseudonym); inputs and
/// outputs travel in <see cref="Payload"/>, which the caller has already encrypted.
/// </summary>
public sealed record JournalEntry(
    DateTimeOffset Time,
    JournalKind Kind,
    string Actor,
    string Action,
    string Resource,
    string Outcome,
    string RequestId,
    string ClientAddress,
    string PatientPseudonym)
{
    public string ClientRequestId { get; init; } = "";

    public string Model { get; init; } = "";

    public string Version { get; init; } = "";

    public string Experiment { get; init; } = "";

    public string Arm { get; init; } = "";

    public long LatencyMicroseconds { get; init; }

    /// <summary>Opaque bytes (an envelope-encrypted payload, or a checkpoint's signature).</summary>
    public ReadOnlyMemory<byte> Payload { get; init; }
}

/// <summary>A record as stored: its sequence number, its content, the previous record's hash and its own.</summary>
public sealed record JournalRecord(long Sequence, JournalEntry Entry, byte[] PreviousHash, byte[] Hash);

/// <summary>
/// The record layout, little-endian, documented in docs/security.md so that an independent
/// verifier can be written from the text alone.
/// <code>
/// segment = header frame*
/// header  = "MSJRNL01" (8 bytes) | first sequence (u64) | hash of the record before it (32 bytes)
/// frame   = body length (u32) | CRC-32 (IEEE) of body (u32) | body
/// body    = sequence (u64) | time in unix microseconds (i64) | kind (u8)
///           | 13 fields, each length (u32) + bytes: actor, action, resource, outcome, request id,
///             client request id, client address, patient pseudonym, model, version, experiment,
///             arm (UTF-8), payload (raw)
///           | latency in microseconds (i64) | previous record's hash (32 bytes)
/// hash    = SHA-256(body)
/// </code>
/// The genesis "previous hash" is 32 zero bytes. A checkpoint record's payload is the P-256 ECDSA
/// signature (IEEE P1363, 64 bytes) over "MSJRNL-CHECKPOINT" | sequence (u64) | hash of the record
/// it follows.
/// </summary>
public static class JournalFormat
{
    public const int HashSize = 32;
    public const int HeaderSize = 8 + 8 + HashSize;
    public const int FrameOverhead = 8;
    public const int MaxBodyBytes = 16 << 20;

    public static ReadOnlySpan<byte> Magic => "MSJRNL01"u8;

    public static ReadOnlySpan<byte> CheckpointDomain => "MSJRNL-CHECKPOINT"u8;

    private const int FieldCount = 13;

    /// <summary>The body without its sequence and previous hash (the writer fills them in when it orders the record).</summary>
    public static byte[] EncodeBody(JournalEntry e)
    {
        Span<int> lengths = stackalloc int[FieldCount - 1];
        string[] texts = [e.Actor, e.Action, e.Resource, e.Outcome, e.RequestId, e.ClientRequestId, e.ClientAddress, e.PatientPseudonym, e.Model, e.Version, e.Experiment, e.Arm];
        var size = 8 + 8 + 1 + (4 * FieldCount) + e.Payload.Length + 8 + HashSize;
        for (var i = 0; i < texts.Length; i++)
        {
            lengths[i] = Encoding.UTF8.GetByteCount(texts[i]);
            size += lengths[i];
        }

        if (size > MaxBodyBytes)
        {
            throw new ArgumentException($"a journal record holds at most {MaxBodyBytes} bytes; this one would hold {size}");
        }

        var body = new byte[size];
        var span = body.AsSpan();
        BinaryPrimitives.WriteInt64LittleEndian(span[8..], e.Time.ToUnixTimeMilliseconds() * 1000 + (e.Time.Ticks / 10 % 1000));
        span[16] = (byte)e.Kind;
        var at = 17;
        for (var i = 0; i < texts.Length; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(span[at..], lengths[i]);
            at += 4 + Encoding.UTF8.GetBytes(texts[i], span[(at + 4)..]);
        }

        BinaryPrimitives.WriteInt32LittleEndian(span[at..], e.Payload.Length);
        e.Payload.Span.CopyTo(span[(at + 4)..]);
        at += 4 + e.Payload.Length;
        BinaryPrimitives.WriteInt64LittleEndian(span[at..], e.LatencyMicroseconds);
        return body;
    }

    /// <summary>Writes the sequence and the previous hash into an encoded body.</summary>
    public static void Seal(Span<byte> body, long sequence, ReadOnlySpan<byte> previousHash)
    {
        BinaryPrimitives.WriteInt64LittleEndian(body, sequence);
        previousHash.CopyTo(body[^HashSize..]);
    }

    public static long SequenceOf(ReadOnlySpan<byte> body) => BinaryPrimitives.ReadInt64LittleEndian(body);

    public static ReadOnlySpan<byte> PreviousHashOf(ReadOnlySpan<byte> body) => body[^HashSize..];

    /// <summary>Reads a sealed body back; throws <see cref="FormatException"/> for one that does not parse.</summary>
    public static (long Sequence, JournalEntry Entry, byte[] PreviousHash) Decode(ReadOnlySpan<byte> body)
    {
        if (body.Length < 17 + (4 * FieldCount) + 8 + HashSize)
        {
            throw new FormatException("the record body is too short");
        }

        var sequence = BinaryPrimitives.ReadInt64LittleEndian(body);
        var micros = BinaryPrimitives.ReadInt64LittleEndian(body[8..]);
        var kind = (JournalKind)body[16];
        var at = 17;
        var texts = new string[FieldCount - 1];
        for (var i = 0; i < texts.Length; i++)
        {
            texts[i] = Encoding.UTF8.GetString(Field(body, ref at));
        }

        var payload = Field(body, ref at).ToArray();
        if (at + 8 + HashSize != body.Length)
        {
            throw new FormatException("the record body's fields do not add up to its length");
        }

        var latency = BinaryPrimitives.ReadInt64LittleEndian(body[at..]);
        var entry = new JournalEntry(
            DateTimeOffset.FromUnixTimeMilliseconds(micros / 1000).AddTicks(micros % 1000 * 10), kind,
            texts[0], texts[1], texts[2], texts[3], texts[4], texts[6], texts[7])
        {
            ClientRequestId = texts[5], Model = texts[8], Version = texts[9], Experiment = texts[10], Arm = texts[11],
            LatencyMicroseconds = latency, Payload = payload,
        };
        return (sequence, entry, body[^HashSize..].ToArray());

        static ReadOnlySpan<byte> Field(ReadOnlySpan<byte> body, ref int at)
        {
            var length = BinaryPrimitives.ReadInt32LittleEndian(body[at..]);
            if (length < 0 || at + 4 + length > body.Length - 8 - HashSize)
            {
                throw new FormatException("a field of the record runs past its end");
            }

            var field = body.Slice(at + 4, length);
            at += 4 + length;
            return field;
        }
    }

    /// <summary>The bytes a checkpoint signs: the domain, then the sequence and hash of the record it follows.</summary>
    public static byte[] CheckpointMessage(long sequence, ReadOnlySpan<byte> hash)
    {
        var message = new byte[CheckpointDomain.Length + 8 + HashSize];
        CheckpointDomain.CopyTo(message);
        BinaryPrimitives.WriteInt64LittleEndian(message.AsSpan(CheckpointDomain.Length), sequence);
        hash.CopyTo(message.AsSpan(CheckpointDomain.Length + 8));
        return message;
    }
}
