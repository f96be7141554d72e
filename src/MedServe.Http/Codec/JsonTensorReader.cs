using System.Buffers.Binary;
using System.Text.Json;
using MedServe.Inference;
using MedServe.Tensors;

namespace MedServe.Http.Codec;

/// <summary>
/// Decodes a JSON <c>data</c> array (flat or nested, row-major) straight into little-endian
/// elements in a pooled buffer: no boxing, no intermediate lists.
/// </summary>
internal ref struct JsonTensorReader
{
    private readonly string _input;
    private readonly TensorDataType _type;
    private readonly long _expected;
    private readonly PooledBuffer _buffer;
    private readonly int _size;
    private long _count;

    private JsonTensorReader(string input, TensorDataType type, long expected, PooledBuffer buffer)
    {
        _input = input;
        _type = type;
        _expected = expected;
        _buffer = buffer;
        _size = type.ElementSize();
    }

    /// <summary>Reads the array at the reader's position into <paramref name="buffer"/>; returns the element count.</summary>
    public static long Read(ref Utf8JsonReader reader, string input, TensorDataType type, long expected, PooledBuffer buffer)
    {
        if (type == TensorDataType.Bf16)
        {
            throw InferenceException.Invalid($"input '{input}': BF16 data travels only in binary form (binary_data_size)");
        }

        var decoder = new JsonTensorReader(input, type, expected, buffer);
        if (reader.TokenType != JsonTokenType.StartArray)
        {
            // A lone scalar is a one-element tensor.
            decoder.Element(ref reader);
            return decoder._count;
        }

        decoder.Array(ref reader, depth: 0);
        return decoder._count;
    }

    private void Array(ref Utf8JsonReader reader, int depth)
    {
        if (depth > 32)
        {
            throw InferenceException.Invalid($"input '{_input}': data is nested too deeply");
        }

        while (reader.Read())
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.EndArray:
                    return;
                case JsonTokenType.StartArray:
                    Array(ref reader, depth + 1);
                    break;
                default:
                    Element(ref reader);
                    break;
            }
        }
    }

    private void Element(ref Utf8JsonReader reader)
    {
        if (_count >= _expected)
        {
            throw InferenceException.Invalid($"input '{_input}' has more data elements than its shape holds ({_expected})");
        }

        _count++;
        if (_type == TensorDataType.Bytes)
        {
            WriteBytesElement(ref reader);
            return;
        }

        var span = _buffer.GetSpan(_size);
        switch (_type)
        {
            case TensorDataType.Bool:
                if (reader.TokenType is not (JsonTokenType.True or JsonTokenType.False))
                {
                    throw Mismatch(ref reader, "true or false");
                }

                span[0] = reader.TokenType == JsonTokenType.True ? (byte)1 : (byte)0;
                break;
            case TensorDataType.UInt8:
                span[0] = (byte)Unsigned(ref reader, byte.MaxValue);
                break;
            case TensorDataType.UInt16:
                BinaryPrimitives.WriteUInt16LittleEndian(span, (ushort)Unsigned(ref reader, ushort.MaxValue));
                break;
            case TensorDataType.UInt32:
                BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)Unsigned(ref reader, uint.MaxValue));
                break;
            case TensorDataType.UInt64:
                BinaryPrimitives.WriteUInt64LittleEndian(span, Unsigned(ref reader, ulong.MaxValue));
                break;
            case TensorDataType.Int8:
                span[0] = (byte)(sbyte)Signed(ref reader, sbyte.MinValue, sbyte.MaxValue);
                break;
            case TensorDataType.Int16:
                BinaryPrimitives.WriteInt16LittleEndian(span, (short)Signed(ref reader, short.MinValue, short.MaxValue));
                break;
            case TensorDataType.Int32:
                BinaryPrimitives.WriteInt32LittleEndian(span, (int)Signed(ref reader, int.MinValue, int.MaxValue));
                break;
            case TensorDataType.Int64:
                BinaryPrimitives.WriteInt64LittleEndian(span, Signed(ref reader, long.MinValue, long.MaxValue));
                break;
            case TensorDataType.Fp16:
                BinaryPrimitives.WriteHalfLittleEndian(span, (Half)Real(ref reader));
                break;
            case TensorDataType.Fp32:
                BinaryPrimitives.WriteSingleLittleEndian(span, (float)Real(ref reader));
                break;
            case TensorDataType.Fp64:
                BinaryPrimitives.WriteDoubleLittleEndian(span, Real(ref reader));
                break;
        }

        _buffer.Advance(_size);
    }

    private void WriteBytesElement(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            throw Mismatch(ref reader, "a string");
        }

        var length = reader.HasValueSequence ? (int)reader.ValueSequence.Length : reader.ValueSpan.Length;
        var span = _buffer.GetSpan(4 + length);
        var written = reader.CopyString(span[4..]); // unescaped UTF-8, never longer than the escaped text
        BinaryPrimitives.WriteInt32LittleEndian(span, written);
        _buffer.Advance(4 + written);
    }

    private ulong Unsigned(ref Utf8JsonReader reader, ulong max)
    {
        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetUInt64(out var value) || value > max)
        {
            throw Mismatch(ref reader, $"an integer in [0, {max}]");
        }

        return value;
    }

    private long Signed(ref Utf8JsonReader reader, long min, long max)
    {
        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out var value) || value < min || value > max)
        {
            throw Mismatch(ref reader, $"an integer in [{min}, {max}]");
        }

        return value;
    }

    private double Real(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetDouble(out var value))
        {
            throw Mismatch(ref reader, "a number");
        }

        return value;
    }

    private readonly InferenceException Mismatch(ref Utf8JsonReader reader, string expected) =>
        InferenceException.Invalid(
            $"input '{_input}' element {_count - 1}: {_type.ToWireName()} data must be {expected}, found {Describe(reader.TokenType)}");

    private static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number out of range or of the wrong kind",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        JsonTokenType.StartObject => "an object",
        _ => token.ToString(),
    };
}
