using System.Buffers.Binary;

namespace MedServe.Tensors;

/// <summary>
/// BYTES tensors travel, and live in memory, in the binary extension's form: each element is a
/// 4-byte little-endian length followed by that many bytes, elements back to back.
/// </summary>
public static class BytesTensor
{
    /// <summary>Counts the elements of a serialized BYTES tensor; -1 when the lengths run past the end.</summary>
    public static long CountElements(ReadOnlySpan<byte> data)
    {
        long count = 0;
        var offset = 0;
        while (offset < data.Length)
        {
            if (data.Length - offset < 4)
            {
                return -1;
            }

            var length = BinaryPrimitives.ReadUInt32LittleEndian(data.Slice(offset, 4));
            if (length > (uint)(data.Length - offset - 4))
            {
                return -1;
            }

            offset += 4 + (int)length;
            count++;
        }

        return count;
    }

    /// <summary>Walks the elements of a well-formed serialized BYTES tensor.</summary>
    public ref struct Enumerator(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        private int _offset;

        public ReadOnlySpan<byte> Current { get; private set; }

        public bool MoveNext()
        {
            if (_offset >= _data.Length)
            {
                return false;
            }

            var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(_data.Slice(_offset, 4));
            Current = _data.Slice(_offset + 4, length);
            _offset += 4 + length;
            return true;
        }

        public readonly Enumerator GetEnumerator() => this;
    }

    public static Enumerator Elements(ReadOnlySpan<byte> data) => new(data);
}
