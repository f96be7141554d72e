using System.Buffers.Binary;
using Google.Protobuf;
using Google.Protobuf.Collections;
using MedServe.Buffers;
using MedServe.Grpc.Protocol;
using MedServe.Inference;
using MedServe.Tensors;

namespace MedServe.Grpc;

/// <summary>
/// Translates ModelInfer messages to the core's request and back. Raw contents
/// (<c>raw_input_contents</c>, tritonclient.grpc's default) are used in place, without a copy;
/// typed contents are packed once into little-endian bytes.
/// </summary>
internal static class GrpcTensorCodec
{
    public static void Read(ModelInferRequest message, InferenceRequest request)
    {
        request.Id = message.Id.Length > 0 ? message.Id : null;
        request.Parameters = ReadParameters(message.Parameters);
        var raw = message.RawInputContents;
        if (raw.Count > 0 && raw.Count != message.Inputs.Count)
        {
            throw InferenceException.Invalid($"raw_input_contents has {raw.Count} entries, but the request has {message.Inputs.Count} inputs");
        }

        for (var i = 0; i < message.Inputs.Count; i++)
        {
            var tensor = message.Inputs[i];
            if (!TensorDataTypes.TryParseWireName(tensor.Datatype, out var type))
            {
                throw InferenceException.Invalid($"input '{tensor.Name}' has an unknown datatype '{tensor.Datatype}'");
            }

            var shape = tensor.Shape.ToArray();
            foreach (var dim in shape)
            {
                if (dim < 0)
                {
                    throw InferenceException.Invalid($"input '{tensor.Name}' has a negative dimension in shape {TensorShape.Format(shape)}");
                }
            }

            ReadOnlyMemory<byte> data;
            if (raw.Count > 0)
            {
                if (tensor.Contents is not null)
                {
                    throw InferenceException.Invalid($"input '{tensor.Name}' has both contents and raw_input_contents");
                }

                data = raw[i].Memory;
            }
            else if (tensor.Contents is { } contents)
            {
                data = Pack(tensor.Name, type, contents, request);
            }
            else
            {
                throw InferenceException.Invalid($"input '{tensor.Name}' has no contents");
            }

            var input = new InputTensor(tensor.Name, type, shape, data) { Parameters = ReadParameters(tensor.Parameters) };
            RequestValidator.CheckData(input);
            request.Inputs.Add(input);
        }

        if (message.Outputs.Count > 0)
        {
            request.Outputs = [];
            foreach (var output in message.Outputs)
            {
                request.Outputs.Add(new RequestedOutput(output.Name) { Parameters = ReadParameters(output.Parameters) });
            }
        }
    }

    /// <summary>Builds the response with every output in raw_output_contents, pointing at the result's memory.</summary>
    public static ModelInferResponse Write(string model, InferenceRequest request, InferenceResult result)
    {
        var response = new ModelInferResponse
        {
            ModelName = model,
            ModelVersion = result.ModelVersion.ToString(System.Globalization.CultureInfo.InvariantCulture),
            Id = request.Id ?? "",
        };
        if (result.Experiment is not null)
        {
            response.Parameters["experiment"] = new InferParameter { StringParam = result.Experiment };
            response.Parameters["arm"] = new InferParameter { StringParam = result.Arm ?? "" };
        }

        foreach (var output in result.Outputs)
        {
            var tensor = new ModelInferResponse.Types.InferOutputTensor { Name = output.Name, Datatype = output.DataType.ToWireName() };
            tensor.Shape.AddRange(output.Shape);
            response.Outputs.Add(tensor);

            // The result must outlive serialization: the caller disposes it when the call completes.
            response.RawOutputContents.Add(UnsafeByteOperations.UnsafeWrap(output.Data));
        }

        return response;
    }

    public static Dictionary<string, InferenceParameter>? ReadParameters(MapField<string, InferParameter> parameters)
    {
        if (parameters.Count == 0)
        {
            return null;
        }

        var result = new Dictionary<string, InferenceParameter>(StringComparer.Ordinal);
        foreach (var (key, value) in parameters)
        {
            result[key] = ReadParameter(key, value);
        }

        return result;
    }

    public static InferenceParameter ReadParameter(string key, InferParameter value) => value.ParameterChoiceCase switch
    {
        InferParameter.ParameterChoiceOneofCase.BoolParam => InferenceParameter.Of(value.BoolParam),
        InferParameter.ParameterChoiceOneofCase.Int64Param => InferenceParameter.Of(value.Int64Param),
        InferParameter.ParameterChoiceOneofCase.StringParam => InferenceParameter.Of(value.StringParam),
        InferParameter.ParameterChoiceOneofCase.DoubleParam => InferenceParameter.Of(value.DoubleParam),
        InferParameter.ParameterChoiceOneofCase.Uint64Param when value.Uint64Param <= long.MaxValue => InferenceParameter.Of((long)value.Uint64Param),
        _ => throw InferenceException.Invalid($"parameter '{key}' has no value or one out of range"),
    };

    private static ReadOnlyMemory<byte> Pack(string name, TensorDataType type, InferTensorContents contents, InferenceRequest request)
    {
        switch (type)
        {
            case TensorDataType.Bool:
                return Own(request, contents.BoolContents.Count, 1, (span, i) => span[i] = contents.BoolContents[i] ? (byte)1 : (byte)0);
            case TensorDataType.UInt8:
                return Own(request, contents.UintContents.Count, 1, (span, i) => span[i] = checked((byte)contents.UintContents[i]));
            case TensorDataType.UInt16:
                return Own(request, contents.UintContents.Count, 2, (span, i) => BinaryPrimitives.WriteUInt16LittleEndian(span[(i * 2)..], checked((ushort)contents.UintContents[i])));
            case TensorDataType.UInt32:
                return Own(request, contents.UintContents.Count, 4, (span, i) => BinaryPrimitives.WriteUInt32LittleEndian(span[(i * 4)..], contents.UintContents[i]));
            case TensorDataType.UInt64:
                return Own(request, contents.Uint64Contents.Count, 8, (span, i) => BinaryPrimitives.WriteUInt64LittleEndian(span[(i * 8)..], contents.Uint64Contents[i]));
            case TensorDataType.Int8:
                return Own(request, contents.IntContents.Count, 1, (span, i) => span[i] = (byte)checked((sbyte)contents.IntContents[i]));
            case TensorDataType.Int16:
                return Own(request, contents.IntContents.Count, 2, (span, i) => BinaryPrimitives.WriteInt16LittleEndian(span[(i * 2)..], checked((short)contents.IntContents[i])));
            case TensorDataType.Int32:
                return Own(request, contents.IntContents.Count, 4, (span, i) => BinaryPrimitives.WriteInt32LittleEndian(span[(i * 4)..], contents.IntContents[i]));
            case TensorDataType.Int64:
                return Own(request, contents.Int64Contents.Count, 8, (span, i) => BinaryPrimitives.WriteInt64LittleEndian(span[(i * 8)..], contents.Int64Contents[i]));
            case TensorDataType.Fp32:
                return Own(request, contents.Fp32Contents.Count, 4, (span, i) => BinaryPrimitives.WriteSingleLittleEndian(span[(i * 4)..], contents.Fp32Contents[i]));
            case TensorDataType.Fp64:
                return Own(request, contents.Fp64Contents.Count, 8, (span, i) => BinaryPrimitives.WriteDoubleLittleEndian(span[(i * 8)..], contents.Fp64Contents[i]));
            case TensorDataType.Bytes:
                var size = 0;
                foreach (var element in contents.BytesContents)
                {
                    size += 4 + element.Length;
                }

                var buffer = BodyBuffers.Rent(size);
                request.Own(buffer);
                var offset = 0;
                foreach (var element in contents.BytesContents)
                {
                    BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(offset), element.Length);
                    element.Span.CopyTo(buffer.AsSpan(offset + 4));
                    offset += 4 + element.Length;
                }

                return buffer.AsMemory(0, size);
            default:
                throw InferenceException.Invalid($"input '{name}': {type.ToWireName()} travels only in raw_input_contents");
        }
    }

    private delegate void Writer(Span<byte> destination, int index);

    private static ReadOnlyMemory<byte> Own(InferenceRequest request, int count, int size, Writer write)
    {
        var buffer = BodyBuffers.Rent(count * size);
        request.Own(buffer);
        try
        {
            for (var i = 0; i < count; i++)
            {
                write(buffer, i);
            }
        }
        catch (OverflowException)
        {
            throw InferenceException.Invalid("a typed content value is out of range for the input's datatype");
        }

        return buffer.AsMemory(0, count * size);
    }
}
