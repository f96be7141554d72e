using System.Buffers.Binary;
using System.Text.Json;
using MedServe.Inference;
using MedServe.Tensors;
using Microsoft.AspNetCore.Http;

namespace MedServe.Http.Codec;

/// <summary>
/// Writes an inference response: the JSON object, then the raw bytes of each output sent in
/// binary form (its <c>binary_data</c> parameter, else the request's <c>binary_data_output</c>),
/// with Inference-Header-Content-Length telling where the JSON ends.
/// </summary>
internal static class InferResponseWriter
{
    public const string HeaderLengthHeader = "Inference-Header-Content-Length";

    public static Task WriteAsync(HttpResponse response, string modelName, InferenceRequest request, InferenceResult result)
    {
        var binaryDefault = request.Parameters is not null
            && request.Parameters.TryGetValue("binary_data_output", out var all) && all.TryGetBool(out var allBinary) && allBinary;

        using var json = new PooledBuffer(1024);
        long binaryLength = 0;
        Span<bool> binary = result.Outputs.Count <= 64 ? stackalloc bool[result.Outputs.Count] : new bool[result.Outputs.Count];
        using (var writer = new Utf8JsonWriter(json, new JsonWriterOptions { SkipValidation = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            if (request.Id is not null)
            {
                writer.WriteString("id"u8, request.Id);
            }

            writer.WriteString("model_name"u8, modelName);
            writer.WriteString("model_version"u8, result.ModelVersion.ToString(System.Globalization.CultureInfo.InvariantCulture));
            if (result.Experiment is not null)
            {
                writer.WriteStartObject("parameters"u8);
                writer.WriteString("experiment"u8, result.Experiment);
                writer.WriteString("arm"u8, result.Arm ?? "");
                writer.WriteEndObject();
            }

            writer.WriteStartArray("outputs"u8);
            for (var i = 0; i < result.Outputs.Count; i++)
            {
                var output = result.Outputs[i];
                binary[i] = WantsBinary(request, output.Name, binaryDefault);
                writer.WriteStartObject();
                writer.WriteString("name"u8, output.Name);
                writer.WriteString("datatype"u8, output.DataType.ToWireName());
                writer.WriteStartArray("shape"u8);
                foreach (var dim in output.Shape)
                {
                    writer.WriteNumberValue(dim);
                }

                writer.WriteEndArray();
                if (binary[i])
                {
                    writer.WriteStartObject("parameters"u8);
                    writer.WriteNumber("binary_data_size"u8, output.Data.Length);
                    writer.WriteEndObject();
                    binaryLength += output.Data.Length;
                }
                else
                {
                    writer.WritePropertyName("data"u8);
                    JsonTensorWriter.Write(writer, output);
                }

                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        response.StatusCode = StatusCodes.Status200OK;
        response.ContentLength = json.Length + binaryLength;
        if (binary.Contains(true))
        {
            response.ContentType = "application/octet-stream";
            response.Headers[HeaderLengthHeader] = json.Length.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        else
        {
            response.ContentType = "application/json";
        }

        // One copy into Kestrel's buffers: the JSON, then each binary output straight from the backend's memory.
        var body = response.BodyWriter;
        json.WrittenSpan.CopyTo(body.GetSpan(json.Length));
        body.Advance(json.Length);
        for (var i = 0; i < result.Outputs.Count; i++)
        {
            if (binary[i] && !result.Outputs[i].Data.IsEmpty)
            {
                var data = result.Outputs[i].Data.Span;
                data.CopyTo(body.GetSpan(data.Length));
                body.Advance(data.Length);
            }
        }

        return body.FlushAsync().AsTask();
    }

    private static bool WantsBinary(InferenceRequest request, string output, bool fallback)
    {
        if (request.Outputs is null)
        {
            return fallback;
        }

        foreach (var requested in request.Outputs)
        {
            if (requested.Name == output)
            {
                return requested.Parameters is not null && requested.Parameters.TryGetValue("binary_data", out var flag) && flag.TryGetBool(out var value)
                    ? value
                    : fallback;
            }
        }

        return fallback;
    }
}

/// <summary>Writes an output tensor's elements as a flat JSON array (row-major).</summary>
internal static class JsonTensorWriter
{
    public static void Write(Utf8JsonWriter writer, OutputTensor output)
    {
        var data = output.Data.Span;
        writer.WriteStartArray();
        switch (output.DataType)
        {
            case TensorDataType.Bool:
                foreach (var b in data)
                {
                    writer.WriteBooleanValue(b != 0);
                }

                break;
            case TensorDataType.UInt8:
                foreach (var b in data)
                {
                    writer.WriteNumberValue(b);
                }

                break;
            case TensorDataType.Int8:
                foreach (var b in data)
                {
                    writer.WriteNumberValue((sbyte)b);
                }

                break;
            case TensorDataType.UInt16:
                for (var i = 0; i < data.Length; i += 2)
                {
                    writer.WriteNumberValue(BinaryPrimitives.ReadUInt16LittleEndian(data[i..]));
                }

                break;
            case TensorDataType.Int16:
                for (var i = 0; i < data.Length; i += 2)
                {
                    writer.WriteNumberValue(BinaryPrimitives.ReadInt16LittleEndian(data[i..]));
                }

                break;
            case TensorDataType.UInt32:
                for (var i = 0; i < data.Length; i += 4)
                {
                    writer.WriteNumberValue(BinaryPrimitives.ReadUInt32LittleEndian(data[i..]));
                }

                break;
            case TensorDataType.Int32:
                for (var i = 0; i < data.Length; i += 4)
                {
                    writer.WriteNumberValue(BinaryPrimitives.ReadInt32LittleEndian(data[i..]));
                }

                break;
            case TensorDataType.UInt64:
                for (var i = 0; i < data.Length; i += 8)
                {
                    writer.WriteNumberValue(BinaryPrimitives.ReadUInt64LittleEndian(data[i..]));
                }

                break;
            case TensorDataType.Int64:
                for (var i = 0; i < data.Length; i += 8)
                {
                    writer.WriteNumberValue(BinaryPrimitives.ReadInt64LittleEndian(data[i..]));
                }

                break;
            case TensorDataType.Fp16:
                for (var i = 0; i < data.Length; i += 2)
                {
                    WriteReal(writer, (float)BinaryPrimitives.ReadHalfLittleEndian(data[i..]));
                }

                break;
            case TensorDataType.Bf16:
                for (var i = 0; i < data.Length; i += 2)
                {
                    // BF16 is the upper half of an FP32.
                    WriteReal(writer, BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(data[i..]) << 16));
                }

                break;
            case TensorDataType.Fp32:
                for (var i = 0; i < data.Length; i += 4)
                {
                    WriteReal(writer, BinaryPrimitives.ReadSingleLittleEndian(data[i..]));
                }

                break;
            case TensorDataType.Fp64:
                for (var i = 0; i < data.Length; i += 8)
                {
                    var value = BinaryPrimitives.ReadDoubleLittleEndian(data[i..]);
                    if (double.IsFinite(value))
                    {
                        writer.WriteNumberValue(value);
                    }
                    else
                    {
                        WriteNonFinite(writer, value);
                    }
                }

                break;
            case TensorDataType.Bytes:
                foreach (var element in BytesTensor.Elements(data))
                {
                    if (System.Text.Unicode.Utf8.IsValid(element))
                    {
                        writer.WriteStringValue(element);
                    }
                    else
                    {
                        throw InferenceException.Invalid($"output '{output.Name}' holds bytes that are not UTF-8; request it with binary_data: true");
                    }
                }

                break;
        }

        writer.WriteEndArray();
    }

    private static void WriteReal(Utf8JsonWriter writer, float value)
    {
        if (float.IsFinite(value))
        {
            writer.WriteNumberValue(value);
        }
        else
        {
            WriteNonFinite(writer, value);
        }
    }

    // JSON has no NaN or Infinity; Python's json (tritonclient) reads these literals, as rapidjson writes them in Triton.
    private static void WriteNonFinite(Utf8JsonWriter writer, double value) =>
        writer.WriteRawValue(double.IsNaN(value) ? "NaN"u8 : value > 0 ? "Infinity"u8 : "-Infinity"u8, skipInputValidation: true);
}
