using System.Text.Json;
using MedServe.Inference;
using MedServe.Tensors;

namespace MedServe.Http.Codec;

/// <summary>
/// Reads an inference request body: the JSON object, then (binary tensor data extension) the
/// raw bytes of each input that declares <c>binary_data_size</c>, in input order. Binary inputs
/// stay slices of the body; JSON data is decoded once into pooled buffers.
/// </summary>
internal static class InferRequestReader
{
    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 64 };

    /// <param name="body">The whole body; the request must keep it alive (it is not copied).</param>
    /// <param name="headerLength">Inference-Header-Content-Length, or null when the body is all JSON.</param>
    public static void Read(ReadOnlyMemory<byte> body, long? headerLength, InferenceRequest request)
    {
        var jsonLength = headerLength ?? body.Length;
        if (jsonLength < 0 || jsonLength > body.Length)
        {
            throw InferenceException.Invalid(
                $"Inference-Header-Content-Length is {headerLength}, but the body has only {body.Length} bytes");
        }

        var binary = body[(int)jsonLength..];
        var reader = new Utf8JsonReader(body.Span[..(int)jsonLength], ReaderOptions);
        var binaryOffset = 0;
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                throw InferenceException.Invalid("the request body must be a JSON object");
            }

            var sawInputs = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("id"u8))
                {
                    reader.Read();
                    request.Id = reader.TokenType == JsonTokenType.String
                        ? reader.GetString()
                        : throw InferenceException.Invalid("'id' must be a string");
                }
                else if (reader.ValueTextEquals("parameters"u8))
                {
                    reader.Read();
                    request.Parameters = ReadParameters(ref reader, "request");
                }
                else if (reader.ValueTextEquals("inputs"u8))
                {
                    reader.Read();
                    Expect(ref reader, JsonTokenType.StartArray, "'inputs' must be an array");
                    sawInputs = true;
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        request.Inputs.Add(ReadInput(ref reader, request, binary, ref binaryOffset));
                    }
                }
                else if (reader.ValueTextEquals("outputs"u8))
                {
                    reader.Read();
                    Expect(ref reader, JsonTokenType.StartArray, "'outputs' must be an array");
                    request.Outputs = [];
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        request.Outputs.Add(ReadOutput(ref reader));
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }

            if (reader.Read())
            {
                throw InferenceException.Invalid("unexpected data after the JSON object; a binary part needs Inference-Header-Content-Length");
            }

            if (!sawInputs || request.Inputs.Count == 0)
            {
                throw InferenceException.Invalid("the request has no 'inputs'");
            }
        }
        catch (JsonException e)
        {
            throw InferenceException.Invalid($"malformed JSON in the request header (line {e.LineNumber + 1}, byte {e.BytePositionInLine}): {FirstSentence(e.Message)}");
        }
        catch (InvalidOperationException)
        {
            // Utf8JsonReader reports a string that is not valid UTF-8 this way.
            throw InferenceException.Invalid("malformed JSON in the request header: a string is not valid UTF-8");
        }

        if (binaryOffset != binary.Length)
        {
            throw InferenceException.Invalid(
                $"the inputs' binary_data_size values add up to {binaryOffset} bytes, but {binary.Length} bytes follow the JSON header");
        }
    }

    private static InputTensor ReadInput(ref Utf8JsonReader reader, InferenceRequest request, ReadOnlyMemory<byte> binary, ref int binaryOffset)
    {
        var position = $"inputs[{request.Inputs.Count}]";
        Expect(ref reader, JsonTokenType.StartObject, $"{position} must be an object");
        string? name = null;
        string? datatype = null;
        long[]? shape = null;
        Dictionary<string, InferenceParameter>? parameters = null;
        Utf8JsonReader dataReader = default;
        var hasData = false;

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("name"u8))
            {
                reader.Read();
                name = reader.TokenType == JsonTokenType.String ? reader.GetString() : throw InferenceException.Invalid($"{position}.name must be a string");
            }
            else if (reader.ValueTextEquals("datatype"u8))
            {
                reader.Read();
                datatype = reader.TokenType == JsonTokenType.String ? reader.GetString() : throw InferenceException.Invalid($"{position}.datatype must be a string");
            }
            else if (reader.ValueTextEquals("shape"u8))
            {
                reader.Read();
                shape = ReadShape(ref reader, position);
            }
            else if (reader.ValueTextEquals("parameters"u8))
            {
                reader.Read();
                parameters = ReadParameters(ref reader, position);
            }
            else if (reader.ValueTextEquals("data"u8))
            {
                reader.Read();
                // The datatype may come after the data: keep a copy of the reader here and decode later.
                dataReader = reader;
                hasData = true;
                reader.Skip();
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        if (string.IsNullOrEmpty(name))
        {
            throw InferenceException.Invalid($"{position} has no 'name'");
        }

        if (datatype is null)
        {
            throw InferenceException.Invalid($"input '{name}' has no 'datatype'");
        }

        if (!TensorDataTypes.TryParseWireName(datatype, out var type))
        {
            throw InferenceException.Invalid($"input '{name}' has an unknown datatype '{datatype}'");
        }

        if (shape is null)
        {
            throw InferenceException.Invalid($"input '{name}' has no 'shape'");
        }

        var elements = TensorShape.ElementCount(shape);
        if (elements < 0)
        {
            throw InferenceException.Invalid($"input '{name}' has an invalid shape {TensorShape.Format(shape)}");
        }

        ReadOnlyMemory<byte> data;
        if (parameters is not null && parameters.TryGetValue("binary_data_size", out var sizeParameter))
        {
            if (hasData)
            {
                throw InferenceException.Invalid($"input '{name}' has both 'data' and binary_data_size");
            }

            if (!sizeParameter.TryGetInt64(out var size) || size < 0)
            {
                throw InferenceException.Invalid($"input '{name}': binary_data_size must be a non-negative integer");
            }

            if (size > binary.Length - binaryOffset)
            {
                throw InferenceException.Invalid(
                    $"input '{name}' declares binary_data_size {size}, but only {binary.Length - binaryOffset} bytes of binary data remain");
            }

            data = binary.Slice(binaryOffset, (int)size);
            binaryOffset += (int)size;
        }
        else if (hasData)
        {
            data = DecodeJson(ref dataReader, name, type, elements, request);
        }
        else
        {
            throw InferenceException.Invalid($"input '{name}' has neither 'data' nor binary_data_size");
        }

        var input = new InputTensor(name, type, shape, data) { Parameters = parameters };
        RequestValidator.CheckData(input);
        return input;
    }

    private static ReadOnlyMemory<byte> DecodeJson(ref Utf8JsonReader reader, string name, TensorDataType type, long elements, InferenceRequest request)
    {
        // Size the buffer from the claimed shape only up to a cap: the shape is the client's word,
        // the data has yet to be seen. The buffer grows as elements arrive.
        const long InitialCap = 64 * 1024;
        var size = type == TensorDataType.Bytes ? 256 : (int)Math.Min(elements, InitialCap) * type.ElementSize();
        var buffer = new PooledBuffer(Math.Max(size, 16));
        try
        {
            var count = JsonTensorReader.Read(ref reader, name, type, elements, buffer);
            if (count != elements)
            {
                throw InferenceException.Invalid(
                    $"input '{name}' has {count} data elements, but shape needs {elements}");
            }

            var length = buffer.Length;
            var array = buffer.Detach();
            request.Own(array);
            return array.AsMemory(0, length);
        }
        finally
        {
            buffer.Dispose();
        }
    }

    private static RequestedOutput ReadOutput(ref Utf8JsonReader reader)
    {
        Expect(ref reader, JsonTokenType.StartObject, "each entry of 'outputs' must be an object");
        string? name = null;
        Dictionary<string, InferenceParameter>? parameters = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("name"u8))
            {
                reader.Read();
                name = reader.TokenType == JsonTokenType.String ? reader.GetString() : throw InferenceException.Invalid("an output's 'name' must be a string");
            }
            else if (reader.ValueTextEquals("parameters"u8))
            {
                reader.Read();
                parameters = ReadParameters(ref reader, "output");
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        if (string.IsNullOrEmpty(name))
        {
            throw InferenceException.Invalid("an entry of 'outputs' has no 'name'");
        }

        if (parameters is not null && parameters.TryGetValue("classification", out var classes) && classes.TryGetInt64(out var count) && count > 0)
        {
            throw InferenceException.Invalid($"output '{name}': the classification extension is not supported");
        }

        return new RequestedOutput(name) { Parameters = parameters };
    }

    private static long[] ReadShape(ref Utf8JsonReader reader, string position)
    {
        Expect(ref reader, JsonTokenType.StartArray, $"{position}.shape must be an array of integers");
        Span<long> dims = stackalloc long[16];
        var rank = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out var dim) || dim < 0)
            {
                throw InferenceException.Invalid($"{position}.shape must hold non-negative integers");
            }

            if (rank == dims.Length)
            {
                throw InferenceException.Invalid($"{position}.shape has more than {dims.Length} dimensions");
            }

            dims[rank++] = dim;
        }

        return dims[..rank].ToArray();
    }

    private static Dictionary<string, InferenceParameter> ReadParameters(ref Utf8JsonReader reader, string position)
    {
        Expect(ref reader, JsonTokenType.StartObject, $"{position} 'parameters' must be an object");
        var parameters = new Dictionary<string, InferenceParameter>(StringComparer.Ordinal);
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var key = reader.GetString()!;
            reader.Read();
            parameters[key] = reader.TokenType switch
            {
                JsonTokenType.String => InferenceParameter.Of(reader.GetString()!),
                JsonTokenType.True => InferenceParameter.Of(true),
                JsonTokenType.False => InferenceParameter.Of(false),
                JsonTokenType.Number when reader.TryGetInt64(out var integer) => InferenceParameter.Of(integer),
                JsonTokenType.Number => InferenceParameter.Of(reader.GetDouble()),
                _ => throw InferenceException.Invalid($"{position} parameter '{key}' must be a string, number or boolean"),
            };
        }

        return parameters;
    }

    private static void Expect(ref Utf8JsonReader reader, JsonTokenType token, string message)
    {
        if (reader.TokenType != token)
        {
            throw InferenceException.Invalid(message);
        }
    }

    private static string FirstSentence(string message)
    {
        var end = message.IndexOf(" LineNumber", StringComparison.Ordinal);
        return end > 0 ? message[..end].TrimEnd() : message;
    }
}
