using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using MedServe.Backends;
using MedServe.Buffers;
using MedServe.Inference;
using MedServe.Repository;
using MedServe.Tensors;
using Microsoft.ML.OnnxRuntime;

namespace MedServe.Onnx;

/// <summary>
/// One ONNX Runtime session. Inputs reach ONNX Runtime without a copy: each tensor is an
/// <see cref="OrtValue"/> over the pinned request buffer. Outputs are handed back as views of
/// ONNX Runtime's own memory, valid until the result is disposed.
/// </summary>
internal sealed class OnnxModelInstance(InferenceSession session, SessionOptions sessionOptions) : IModelInstance
{
    private readonly RunOptions _runOptions = new();

    public InferenceResult Execute(InferenceRequest request, IReadOnlyList<TensorConfig> outputs, ref PhaseTimings timings)
    {
        var start = Stopwatch.GetTimestamp();
        var count = request.Inputs.Count;
        var names = new string[count];
        var values = new OrtValue[count];
        var pins = new MemoryHandle[count];
        try
        {
            for (var i = 0; i < count; i++)
            {
                var input = request.Inputs[i];
                names[i] = input.Name;
                values[i] = CreateValue(input, ref pins[i]);
            }

            var outputNames = new string[outputs.Count];
            for (var i = 0; i < outputNames.Length; i++)
            {
                outputNames[i] = outputs[i].Name;
            }

            var inferStart = Stopwatch.GetTimestamp();
            timings.InputNs = Nanoseconds(start, inferStart);
            IDisposableReadOnlyCollection<OrtValue> results;
            try
            {
                results = session.Run(_runOptions, names, values, outputNames);
            }
            catch (OnnxRuntimeException e)
            {
                throw InferenceException.Invalid($"the model rejected the request: {e.Message}");
            }

            var outputStart = Stopwatch.GetTimestamp();
            timings.InferNs = Nanoseconds(inferStart, outputStart);
            var result = WrapOutputs(outputNames, results);
            timings.OutputNs = Nanoseconds(outputStart, Stopwatch.GetTimestamp());
            return result;
        }
        finally
        {
            for (var i = 0; i < count; i++)
            {
                values[i]?.Dispose();
                pins[i].Dispose();
            }
        }
    }

    public void Dispose()
    {
        session.Dispose();
        sessionOptions.Dispose();
        _runOptions.Dispose();
    }

    private static unsafe OrtValue CreateValue(InputTensor input, ref MemoryHandle pin)
    {
        if (input.DataType == TensorDataType.Bytes)
        {
            var strings = OrtValue.CreateTensorWithEmptyStrings(OrtAllocator.DefaultInstance, input.Shape);
            var index = 0;
            foreach (var element in BytesTensor.Elements(input.Data.Span))
            {
                strings.StringTensorSetElementAt(element, index++);
            }

            return strings;
        }

        var elementType = OnnxTypes.ToElementType(input.DataType);
        if (input.Data.IsEmpty)
        {
            return OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, elementType, input.Shape);
        }

        pin = input.Data.Pin();
        return OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, elementType, input.Shape, (IntPtr)pin.Pointer, input.Data.Length);
    }

    private static unsafe InferenceResult WrapOutputs(string[] names, IDisposableReadOnlyCollection<OrtValue> results)
    {
        var owner = new OutputOwner(results);
        try
        {
            var outputs = new OutputTensor[names.Length];
            for (var i = 0; i < names.Length; i++)
            {
                var value = results[i];
                var info = value.GetTensorTypeAndShape();
                if (!OnnxTypes.TryToDataType(info.ElementDataType, out var type))
                {
                    throw new InferenceException(InferenceErrorKind.Internal, $"output '{names[i]}' has an unsupported element type {info.ElementDataType}");
                }

                ReadOnlyMemory<byte> data;
                if (type == TensorDataType.Bytes)
                {
                    data = owner.SerializeStrings(value, info.ElementCount);
                }
                else
                {
                    var raw = value.GetTensorMutableRawData();
                    fixed (byte* pointer = raw)
                    {
                        // ONNX Runtime owns this memory and does not move it; the view lives as long as the result.
                        data = new NativeMemoryManager((IntPtr)pointer, raw.Length).Memory;
                    }
                }

                outputs[i] = new OutputTensor(names[i], type, info.Shape, data);
            }

            return new InferenceResult(outputs, owner);
        }
        catch
        {
            owner.Dispose();
            throw;
        }
    }

    private static long Nanoseconds(long from, long to) =>
        (long)((to - from) * (1_000_000_000.0 / Stopwatch.Frequency));

    /// <summary>Keeps ONNX Runtime's output tensors (and any pooled BYTES buffers) alive until the response is written.</summary>
    private sealed class OutputOwner(IDisposableReadOnlyCollection<OrtValue> results) : IDisposable
    {
        private List<byte[]>? _rented;

        public ReadOnlyMemory<byte> SerializeStrings(OrtValue value, long count)
        {
            var size = 0;
            for (var i = 0; i < count; i++)
            {
                size += 4 + value.GetStringElementAsSpan((int)i).Length; // UTF-8 bytes, as ONNX Runtime stores them.
            }

            var buffer = BodyBuffers.Rent(size);
            (_rented ??= []).Add(buffer);
            var offset = 0;
            for (var i = 0; i < count; i++)
            {
                var element = value.GetStringElementAsSpan((int)i);
                BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(offset, 4), element.Length);
                element.CopyTo(buffer.AsSpan(offset + 4));
                offset += 4 + element.Length;
            }

            return buffer.AsMemory(0, offset);
        }

        public void Dispose()
        {
            results.Dispose();
            if (_rented is not null)
            {
                foreach (var buffer in _rented)
                {
                    BodyBuffers.Return(buffer);
                }

                _rented = null;
            }
        }
    }
}
