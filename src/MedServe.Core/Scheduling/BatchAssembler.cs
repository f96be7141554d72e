using MedServe.Buffers;
using System.Buffers.Binary;
using MedServe.Inference;
using MedServe.Repository;
using MedServe.Tensors;

namespace MedServe.Scheduling;

/// <summary>
/// Joins requests along the batch dimension (each request's rows copied once into a pooled
/// buffer) and cuts a batch result back into per-request results without copying: each
/// request's outputs are views of the batch's output memory, freed when the last is disposed.
/// </summary>
internal static class BatchAssembler
{
    /// <summary>True when two requests can share a batch: same inputs with the same shapes past the batch dimension.</summary>
    public static bool Compatible(InferenceRequest a, InferenceRequest b)
    {
        if (a.Inputs.Count != b.Inputs.Count)
        {
            return false;
        }

        foreach (var input in a.Inputs)
        {
            var other = Find(b, input.Name);
            if (other is null || other.Shape.Length != input.Shape.Length || !input.Shape.AsSpan(1).SequenceEqual(other.Shape.AsSpan(1)))
            {
                return false;
            }
        }

        return true;
    }

    public static long Rows(InferenceRequest request) => request.Inputs[0].Shape[0];

    /// <summary>One request whose inputs hold every request's rows, in order.</summary>
    public static InferenceRequest Combine(IReadOnlyList<InferenceRequest> requests)
    {
        var first = requests[0];
        var combined = new InferenceRequest();
        long rows = 0;
        foreach (var request in requests)
        {
            rows += Rows(request);
        }

        foreach (var input in first.Inputs)
        {
            var total = 0;
            foreach (var request in requests)
            {
                total += Find(request, input.Name)!.Data.Length;
            }

            var buffer = BodyBuffers.Rent(total);
            combined.Own(buffer);
            var offset = 0;
            foreach (var request in requests)
            {
                var data = Find(request, input.Name)!.Data.Span;
                data.CopyTo(buffer.AsSpan(offset));
                offset += data.Length;
            }

            var shape = (long[])input.Shape.Clone();
            shape[0] = rows;
            combined.Inputs.Add(new InputTensor(input.Name, input.DataType, shape, buffer.AsMemory(0, total)));
        }

        return combined;
    }

    /// <summary>The union of the outputs the requests ask for, in the model's order.</summary>
    public static IReadOnlyList<TensorConfig> UnionOutputs(IReadOnlyList<IReadOnlyList<TensorConfig>> asked, IReadOnlyList<TensorConfig> all)
    {
        if (asked.Count == 1)
        {
            return asked[0];
        }

        var union = new List<TensorConfig>(all.Count);
        foreach (var output in all)
        {
            foreach (var list in asked)
            {
                if (list.Contains(output))
                {
                    union.Add(output);
                    break;
                }
            }
        }

        return union;
    }

    /// <summary>Cuts each request's rows out of the batch result; the views share one owner.</summary>
    public static InferenceResult[] Split(InferenceResult batch, IReadOnlyList<long> rows, IReadOnlyList<IReadOnlyList<TensorConfig>> asked)
    {
        var owner = new SharedOwner(batch, rows.Count);
        var results = new InferenceResult[rows.Count];
        long start = 0;
        for (var r = 0; r < rows.Count; r++)
        {
            var outputs = new OutputTensor[asked[r].Count];
            for (var o = 0; o < outputs.Length; o++)
            {
                var output = FindOutput(batch, asked[r][o].Name);
                outputs[o] = Slice(output, start, rows[r]);
            }

            results[r] = new InferenceResult(outputs, owner.Lease()) { ModelVersion = batch.ModelVersion };
            start += rows[r];
        }

        return results;
    }

    private static OutputTensor Slice(OutputTensor output, long startRow, long rowCount)
    {
        var shape = (long[])output.Shape.Clone();
        shape[0] = rowCount;
        var totalRows = output.Shape[0];
        if (output.DataType != TensorDataType.Bytes)
        {
            var rowBytes = totalRows == 0 ? 0 : output.Data.Length / totalRows;
            return new OutputTensor(output.Name, output.DataType, shape, output.Data.Slice((int)(startRow * rowBytes), (int)(rowCount * rowBytes)));
        }

        // BYTES: walk the length prefixes to the first element of the first row, then over the rows.
        var perRow = TensorShape.ElementCount(output.Shape.AsSpan(1));
        var span = output.Data.Span;
        var begin = Skip(span, 0, startRow * perRow);
        var end = Skip(span, begin, rowCount * perRow);
        return new OutputTensor(output.Name, output.DataType, shape, output.Data[begin..end]);
    }

    private static int Skip(ReadOnlySpan<byte> data, int offset, long elements)
    {
        for (long i = 0; i < elements; i++)
        {
            offset += 4 + (int)BinaryPrimitives.ReadUInt32LittleEndian(data[offset..]);
        }

        return offset;
    }

    private static InputTensor? Find(InferenceRequest request, string name)
    {
        foreach (var input in request.Inputs)
        {
            if (input.Name == name)
            {
                return input;
            }
        }

        return null;
    }

    private static OutputTensor FindOutput(InferenceResult result, string name)
    {
        foreach (var output in result.Outputs)
        {
            if (output.Name == name)
            {
                return output;
            }
        }

        throw new InferenceException(InferenceErrorKind.Internal, $"the batch result lacks output '{name}'");
    }

    /// <summary>Disposes the batch result when every request's view of it is disposed.</summary>
    private sealed class SharedOwner(IDisposable batch, int count)
    {
        private int _remaining = count;

        public IDisposable Lease() => new Handle(this);

        private void Release()
        {
            if (Interlocked.Decrement(ref _remaining) == 0)
            {
                batch.Dispose();
            }
        }

        private sealed class Handle(SharedOwner owner) : IDisposable
        {
            private int _disposed;

            public void Dispose()
            {
                if (Interlocked.Exchange(ref _disposed, 1) == 0)
                {
                    owner.Release();
                }
            }
        }
    }
}
