using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using MedServe.Inference;
using MedServe.Tensors;

namespace MedServe.Predictions;

/// <summary>Summary statistics of one tensor's elements, kept instead of the elements when the inputs are over the size cap.</summary>
public sealed record TensorSummary(long Count, double Min, double Max, double Mean, double StdDev);

/// <summary>
/// One logged tensor: its elements, or (an input over the cap) the SHA-256 of its bytes and a
/// summary of its values. BYTES tensors are summarised by count only (their statistics are NaN).
/// </summary>
public sealed record LoggedTensor(string Name, TensorDataType DataType, long[] Shape, byte[]? Data, byte[]? Digest, TensorSummary? Summary);

/// <summary>A payload read back: its tensors and the subgroup parameters the model's monitoring spec declared.</summary>
public sealed record DecodedPrediction(IReadOnlyList<LoggedTensor> Inputs, IReadOnlyList<LoggedTensor> Outputs, bool InputsSummarised, IReadOnlyDictionary<string, string> Subgroups)
{
    public void Deconstruct(out IReadOnlyList<LoggedTensor> inputs, out IReadOnlyList<LoggedTensor> outputs, out bool inputsSummarised) =>
        (inputs, outputs, inputsSummarised) = (Inputs, Outputs, InputsSummarised);
}

/// <summary>
/// What the journal keeps of one inference's data: inputs and outputs, in one protocol-neutral
/// layout whatever frontend they came through (REST JSON, REST binary, gRPC). The bytes are
/// encrypted before they are written (the caller's job); this type only lays them out.
/// <code>
/// payload = version (u8 = 1) | flags (u8: bit 0 = inputs summarised, bit 1 = subgroups follow) | inputs | outputs [| subgroups]
/// tensors = count (u16) | tensor*
/// tensor  = name length (u16) | name (UTF-8) | datatype (u8, TensorDataType) | rank (u8) | dims (i64 * rank)
///           | full: byte length (u32) | bytes
///           | summarised: SHA-256 (32 bytes) | count (i64) | min | max | mean | std (f64 each)
/// subgroups = count (u8) | (name length (u16) | name | value length (u16) | value (UTF-8))*
/// </code>
/// </summary>
public static class PredictionPayload
{
    /// <summary>The server's default input cap (MedServe:Journal:MaxInputBytes overrides it, a model's journal { max_input_bytes } over that).</summary>
    public const int DefaultMaxInputBytes = 64 * 1024;

    private const byte Version = 1;
    private const byte InputsSummarised = 1;
    private const byte HasSubgroups = 2;
    private const int SummaryBytes = 32 + 8 + (8 * 4);

    public static byte[] Encode(IReadOnlyList<InputTensor> inputs, IReadOnlyList<OutputTensor> outputs, long maxInputBytes,
        IReadOnlyList<KeyValuePair<string, string>>? subgroups = null)
    {
        long inputBytes = 0;
        foreach (var input in inputs)
        {
            inputBytes += input.Data.Length;
        }

        var summarise = inputBytes > maxInputBytes;
        var size = 2 + 2 + 2;
        foreach (var input in inputs)
        {
            size += TensorHeaderSize(input.Name, input.Shape) + (summarise ? SummaryBytes : 4 + input.Data.Length);
        }

        foreach (var output in outputs)
        {
            size += TensorHeaderSize(output.Name, output.Shape) + 4 + output.Data.Length;
        }

        var withSubgroups = subgroups is { Count: > 0 };
        if (withSubgroups)
        {
            size += 1;
            foreach (var (name, value) in subgroups!)
            {
                size += 4 + Encoding.UTF8.GetByteCount(name) + Encoding.UTF8.GetByteCount(value);
            }
        }

        var payload = new byte[size];
        var span = payload.AsSpan();
        span[0] = Version;
        span[1] = (byte)((summarise ? InputsSummarised : 0) | (withSubgroups ? HasSubgroups : 0));
        var at = 2;
        BinaryPrimitives.WriteUInt16LittleEndian(span[at..], checked((ushort)inputs.Count));
        at += 2;
        foreach (var input in inputs)
        {
            at = WriteHeader(span, at, input.Name, input.DataType, input.Shape);
            if (summarise)
            {
                SHA256.HashData(input.Data.Span, span.Slice(at, 32));
                var summary = Summarise(input.DataType, input.Data.Span);
                BinaryPrimitives.WriteInt64LittleEndian(span[(at + 32)..], summary.Count);
                BinaryPrimitives.WriteDoubleLittleEndian(span[(at + 40)..], summary.Min);
                BinaryPrimitives.WriteDoubleLittleEndian(span[(at + 48)..], summary.Max);
                BinaryPrimitives.WriteDoubleLittleEndian(span[(at + 56)..], summary.Mean);
                BinaryPrimitives.WriteDoubleLittleEndian(span[(at + 64)..], summary.StdDev);
                at += SummaryBytes;
            }
            else
            {
                at = WriteData(span, at, input.Data.Span);
            }
        }

        BinaryPrimitives.WriteUInt16LittleEndian(span[at..], checked((ushort)outputs.Count));
        at += 2;
        foreach (var output in outputs)
        {
            at = WriteHeader(span, at, output.Name, output.DataType, output.Shape);
            at = WriteData(span, at, output.Data.Span);
        }

        if (withSubgroups)
        {
            span[at++] = checked((byte)subgroups!.Count);
            foreach (var (name, value) in subgroups)
            {
                at = WriteText(span, at, name);
                at = WriteText(span, at, value);
            }
        }

        return payload;
    }

    private static int WriteText(Span<byte> span, int at, string text)
    {
        var length = Encoding.UTF8.GetBytes(text, span[(at + 2)..]);
        BinaryPrimitives.WriteUInt16LittleEndian(span[at..], checked((ushort)length));
        return at + 2 + length;
    }

    /// <summary>Reads a payload back; a <see cref="FormatException"/> names what does not parse.</summary>
    public static DecodedPrediction Decode(ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 6 || payload[0] != Version)
        {
            throw new FormatException("not a prediction payload of version 1");
        }

        var summarised = (payload[1] & InputsSummarised) != 0;
        var at = 2;
        var inputs = ReadTensors(payload, ref at, summarised);
        var outputs = ReadTensors(payload, ref at, false);
        var subgroups = new Dictionary<string, string>(StringComparer.Ordinal);
        if ((payload[1] & HasSubgroups) != 0)
        {
            var count = Take(payload, ref at, 1)[0];
            for (var i = 0; i < count; i++)
            {
                var name = ReadText(payload, ref at);
                subgroups[name] = ReadText(payload, ref at);
            }
        }

        if (at != payload.Length)
        {
            throw new FormatException("the prediction payload has bytes after its outputs");
        }

        return new DecodedPrediction(inputs, outputs, summarised, subgroups);
    }

    private static string ReadText(ReadOnlySpan<byte> payload, ref int at)
    {
        var length = BinaryPrimitives.ReadUInt16LittleEndian(Take(payload, ref at, 2));
        return Encoding.UTF8.GetString(Take(payload, ref at, length));
    }

    /// <summary>Count, min, max, mean and population standard deviation of a tensor's elements, in double precision.</summary>
    public static TensorSummary Summarise(TensorDataType type, ReadOnlySpan<byte> data)
    {
        var size = type.ElementSize();
        if (size == 0)
        {
            return new TensorSummary(BytesTensor.CountElements(data), double.NaN, double.NaN, double.NaN, double.NaN);
        }

        var count = data.Length / size;
        double min = double.PositiveInfinity, max = double.NegativeInfinity, mean = 0, m2 = 0;
        for (var i = 0; i < count; i++)
        {
            // Welford: one pass, stable for long tensors of similar values (an image).
            var x = Element(type, data.Slice(i * size, size));
            min = Math.Min(min, x);
            max = Math.Max(max, x);
            var delta = x - mean;
            mean += delta / (i + 1);
            m2 += delta * (x - mean);
        }

        return count == 0
            ? new TensorSummary(0, double.NaN, double.NaN, double.NaN, double.NaN)
            : new TensorSummary(count, min, max, mean, Math.Sqrt(m2 / count));
    }

    /// <summary>One element as a double, for statistics (drift, outcomes) and summaries.</summary>
    public static double Element(TensorDataType type, ReadOnlySpan<byte> element) => type switch
    {
        TensorDataType.Bool or TensorDataType.UInt8 => element[0],
        TensorDataType.Int8 => (sbyte)element[0],
        TensorDataType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(element),
        TensorDataType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(element),
        TensorDataType.UInt32 => BinaryPrimitives.ReadUInt32LittleEndian(element),
        TensorDataType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(element),
        TensorDataType.UInt64 => BinaryPrimitives.ReadUInt64LittleEndian(element),
        TensorDataType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(element),
        TensorDataType.Fp16 => (double)BinaryPrimitives.ReadHalfLittleEndian(element),
        TensorDataType.Bf16 => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(element) << 16),
        TensorDataType.Fp32 => BinaryPrimitives.ReadSingleLittleEndian(element),
        TensorDataType.Fp64 => BinaryPrimitives.ReadDoubleLittleEndian(element),
        _ => double.NaN,
    };

    private static int TensorHeaderSize(string name, long[] shape) =>
        2 + Encoding.UTF8.GetByteCount(name) + 1 + 1 + (8 * shape.Length);

    private static int WriteHeader(Span<byte> span, int at, string name, TensorDataType type, long[] shape)
    {
        var length = Encoding.UTF8.GetBytes(name, span[(at + 2)..]);
        BinaryPrimitives.WriteUInt16LittleEndian(span[at..], checked((ushort)length));
        at += 2 + length;
        span[at++] = (byte)type;
        span[at++] = checked((byte)shape.Length);
        foreach (var dim in shape)
        {
            BinaryPrimitives.WriteInt64LittleEndian(span[at..], dim);
            at += 8;
        }

        return at;
    }

    private static int WriteData(Span<byte> span, int at, ReadOnlySpan<byte> data)
    {
        BinaryPrimitives.WriteInt32LittleEndian(span[at..], data.Length);
        data.CopyTo(span[(at + 4)..]);
        return at + 4 + data.Length;
    }

    private static List<LoggedTensor> ReadTensors(ReadOnlySpan<byte> payload, ref int at, bool summarised)
    {
        var count = BinaryPrimitives.ReadUInt16LittleEndian(Take(payload, ref at, 2));
        var tensors = new List<LoggedTensor>(count);
        for (var i = 0; i < count; i++)
        {
            var nameLength = BinaryPrimitives.ReadUInt16LittleEndian(Take(payload, ref at, 2));
            var name = Encoding.UTF8.GetString(Take(payload, ref at, nameLength));
            var type = (TensorDataType)Take(payload, ref at, 1)[0];
            var rank = Take(payload, ref at, 1)[0];
            var shape = new long[rank];
            for (var d = 0; d < rank; d++)
            {
                shape[d] = BinaryPrimitives.ReadInt64LittleEndian(Take(payload, ref at, 8));
            }

            if (summarised)
            {
                var digest = Take(payload, ref at, 32).ToArray();
                var s = Take(payload, ref at, SummaryBytes - 32);
                tensors.Add(new LoggedTensor(name, type, shape, null, digest, new TensorSummary(
                    BinaryPrimitives.ReadInt64LittleEndian(s), BinaryPrimitives.ReadDoubleLittleEndian(s[8..]), BinaryPrimitives.ReadDoubleLittleEndian(s[16..]),
                    BinaryPrimitives.ReadDoubleLittleEndian(s[24..]), BinaryPrimitives.ReadDoubleLittleEndian(s[32..]))));
            }
            else
            {
                var length = BinaryPrimitives.ReadInt32LittleEndian(Take(payload, ref at, 4));
                tensors.Add(new LoggedTensor(name, type, shape, Take(payload, ref at, length).ToArray(), null, null));
            }
        }

        return tensors;
    }

    private static ReadOnlySpan<byte> Take(ReadOnlySpan<byte> payload, ref int at, int length)
    {
        if (length < 0 || at + length > payload.Length)
        {
            throw new FormatException("the prediction payload ends inside a tensor");
        }

        var slice = payload.Slice(at, length);
        at += length;
        return slice;
    }
}
