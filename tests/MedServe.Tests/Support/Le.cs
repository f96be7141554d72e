using System.Buffers.Binary;
using System.Text;

namespace MedServe.Tests.Support;

/// <summary>Builds little-endian tensor bytes the way the wire carries them.</summary>
internal static class Le
{
    public static byte[] Bools(params bool[] values) => values.Select(v => v ? (byte)1 : (byte)0).ToArray();

    public static byte[] UInt8(params byte[] values) => values;

    public static byte[] Int8(params sbyte[] values) => values.Select(v => (byte)v).ToArray();

    public static byte[] UInt16(params ushort[] values) => Build(values, 2, (s, v) => BinaryPrimitives.WriteUInt16LittleEndian(s, v));

    public static byte[] Int16(params short[] values) => Build(values, 2, (s, v) => BinaryPrimitives.WriteInt16LittleEndian(s, v));

    public static byte[] UInt32(params uint[] values) => Build(values, 4, (s, v) => BinaryPrimitives.WriteUInt32LittleEndian(s, v));

    public static byte[] Int32(params int[] values) => Build(values, 4, (s, v) => BinaryPrimitives.WriteInt32LittleEndian(s, v));

    public static byte[] UInt64(params ulong[] values) => Build(values, 8, (s, v) => BinaryPrimitives.WriteUInt64LittleEndian(s, v));

    public static byte[] Int64(params long[] values) => Build(values, 8, (s, v) => BinaryPrimitives.WriteInt64LittleEndian(s, v));

    public static byte[] Fp16(params Half[] values) => Build(values, 2, (s, v) => BinaryPrimitives.WriteHalfLittleEndian(s, v));

    public static byte[] Fp32(params float[] values) => Build(values, 4, (s, v) => BinaryPrimitives.WriteSingleLittleEndian(s, v));

    public static byte[] Fp64(params double[] values) => Build(values, 8, (s, v) => BinaryPrimitives.WriteDoubleLittleEndian(s, v));

    /// <summary>BF16 is the upper 16 bits of an FP32.</summary>
    public static byte[] Bf16(params float[] values) =>
        Build(values, 2, (s, v) => BinaryPrimitives.WriteUInt16LittleEndian(s, (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16)));

    /// <summary>Serialized BYTES: 4-byte little-endian length, then the UTF-8 bytes, per element.</summary>
    public static byte[] Strings(params string[] values) => Bytes(values.Select(Encoding.UTF8.GetBytes).ToArray());

    public static byte[] Bytes(params byte[][] elements)
    {
        var result = new byte[elements.Sum(e => 4 + e.Length)];
        var offset = 0;
        foreach (var element in elements)
        {
            BinaryPrimitives.WriteInt32LittleEndian(result.AsSpan(offset), element.Length);
            element.CopyTo(result, offset + 4);
            offset += 4 + element.Length;
        }

        return result;
    }

    private delegate void Writer<T>(Span<byte> span, T value);

    private static byte[] Build<T>(T[] values, int size, Writer<T> write)
    {
        var result = new byte[values.Length * size];
        for (var i = 0; i < values.Length; i++)
        {
            write(result.AsSpan(i * size, size), values[i]);
        }

        return result;
    }
}
