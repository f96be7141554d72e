using System.Buffers.Binary;
using MedServe.Inference;
using MedServe.Repository;
using MedServe.Tensors;

namespace MedServe.Lifecycle;

/// <summary>
/// The requests a version answers before it serves: the config's <c>model_warmup</c> samples when
/// it has any (Triton's), else one generated from the signature: zeros (empty strings for BYTES),
/// batch 1, -1 dimensions as 1.
/// </summary>
internal static class WarmUpRequest
{
    public static InferenceRequest For(ModelConfig config)
    {
        var request = new InferenceRequest();
        foreach (var input in config.Inputs)
        {
            var shape = config.WireShape(input).Select(d => d < 0 ? 1 : d).ToArray();
            var elements = TensorShape.ElementCount(shape);
            var data = input.DataType == TensorDataType.Bytes
                ? new byte[elements * 4] // each element: a zero length
                : new byte[elements * input.DataType.ElementSize()];
            request.Inputs.Add(new InputTensor(input.Name, input.DataType, shape, data));
        }

        return request;
    }

    /// <summary>Every warm-up request, in order, <c>count</c> times each; files are read from <paramref name="modelFolder"/>/warmup.</summary>
    /// <exception cref="InferenceException">A sample that cannot be built (a missing or mis-sized data file).</exception>
    public static IEnumerable<InferenceRequest> All(ModelConfig config, string modelFolder)
    {
        if (config.Warmup.Count == 0)
        {
            yield return For(config);
            yield break;
        }

        foreach (var sample in config.Warmup)
        {
            for (var i = 0; i < sample.Count; i++)
            {
                yield return Build(config, sample, modelFolder, seed: i);
            }
        }
    }

    private static InferenceRequest Build(ModelConfig config, WarmupSample sample, string modelFolder, int seed)
    {
        var request = new InferenceRequest();
        var random = new Random(seed);
        foreach (var input in sample.Inputs)
        {
            long[] shape = config.MaxBatchSize > 0 ? [Math.Max(1, sample.BatchSize), .. input.Dims] : [.. input.Dims];
            var elements = TensorShape.ElementCount(shape);
            var size = input.DataType.ElementSize();
            var data = input.Data switch
            {
                WarmupData.File => FromFile(sample, input, modelFolder, size == 0 ? 0 : elements * size, shape[0], config.MaxBatchSize > 0),
                WarmupData.Random => Random(input.DataType, elements, random),
                _ => new byte[size == 0 ? elements * 4 : elements * size],
            };
            request.Inputs.Add(new InputTensor(input.Name, input.DataType, shape, data));
        }

        return request;
    }

    /// <summary>Uniform [0, 1) for real types, random bits for integers, 0/1 for BOOL, empty strings for BYTES: values a model accepts.</summary>
    private static byte[] Random(TensorDataType type, long elements, Random random)
    {
        var size = type.ElementSize();
        if (size == 0)
        {
            return new byte[elements * 4];
        }

        var data = new byte[elements * size];
        for (var i = 0; i < elements; i++)
        {
            var element = data.AsSpan((int)(i * size), size);
            switch (type)
            {
                case TensorDataType.Fp32:
                    BinaryPrimitives.WriteSingleLittleEndian(element, random.NextSingle());
                    break;
                case TensorDataType.Fp64:
                    BinaryPrimitives.WriteDoubleLittleEndian(element, random.NextDouble());
                    break;
                case TensorDataType.Fp16:
                    BinaryPrimitives.WriteHalfLittleEndian(element, (Half)random.NextSingle());
                    break;
                case TensorDataType.Bf16:
                    BinaryPrimitives.WriteUInt16LittleEndian(element, (ushort)(BitConverter.SingleToInt32Bits(random.NextSingle()) >> 16));
                    break;
                case TensorDataType.Bool:
                    element[0] = (byte)random.Next(2);
                    break;
                default:
                    random.NextBytes(element);
                    break;
            }
        }

        return data;
    }

    /// <summary>A raw file (one batch element's bytes, repeated for the batch, or the whole tensor), confined to the model's warmup/ folder.</summary>
    private static byte[] FromFile(WarmupSample sample, WarmupInput input, string modelFolder, long expected, long batch, bool batched)
    {
        var path = Files.PathConfinement.ResolveInside(Path.Combine(modelFolder, "warmup"), input.File!, allowSubfolders: false);
        if (path is null || !File.Exists(path))
        {
            throw InferenceException.Invalid($"warm-up sample '{sample.Name}': input '{input.Name}': file '{input.File}' is not in the model's warmup/ folder");
        }

        var bytes = File.ReadAllBytes(path);
        if (expected == 0 || bytes.Length == expected)
        {
            return bytes;
        }

        if (batched && bytes.Length * batch == expected)
        {
            var whole = new byte[expected];
            for (var b = 0; b < batch; b++)
            {
                bytes.CopyTo(whole, b * bytes.Length);
            }

            return whole;
        }

        throw InferenceException.Invalid($"warm-up sample '{sample.Name}': input '{input.Name}': file '{input.File}' holds {bytes.Length} bytes; the tensor needs {expected}");
    }
}
