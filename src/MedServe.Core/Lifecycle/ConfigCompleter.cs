using MedServe.Backends;
using MedServe.Repository;
using MedServe.Tensors;

namespace MedServe.Lifecycle;

/// <summary>
/// Triton's auto-complete: fills what a config leaves out from the model file's signature, and
/// checks what it states against it, so a mismatch is a load error rather than a request error.
/// </summary>
public static class ConfigCompleter
{
    public static ModelConfig Complete(ModelConfig config, ModelSignature signature, string platform, int defaultMaxBatchSize)
    {
        var completed = config with { Platform = config.Platform.Length > 0 ? config.Platform : platform };

        // Batching: when nothing says otherwise and every tensor's first dimension is dynamic,
        // the model batches (Triton's default-max-batch-size rule).
        var batchable = AllLeadingDynamic(signature.Inputs) && AllLeadingDynamic(signature.Outputs);
        if (completed.MaxBatchSize == 0 && completed.Inputs.Count == 0 && completed.Outputs.Count == 0 && batchable && defaultMaxBatchSize > 0)
        {
            // As Triton's auto-complete does, a batching model gets the dynamic batcher.
            completed = completed with
            {
                MaxBatchSize = defaultMaxBatchSize,
                DynamicBatching = defaultMaxBatchSize > 1 ? completed.DynamicBatching ?? new DynamicBatchingConfig() : completed.DynamicBatching,
            };
        }

        var batching = completed.MaxBatchSize > 0;
        if (batching && !batchable)
        {
            throw new ModelConfigException(
                $"max_batch_size is {completed.MaxBatchSize}, but the model's tensors do not all have a dynamic first dimension");
        }

        completed = completed with
        {
            Inputs = Merge(completed.Inputs, signature.Inputs, batching, "input"),
            Outputs = Merge(completed.Outputs, signature.Outputs, batching, "output"),
        };
        return completed;
    }

    private static List<TensorConfig> Merge(IReadOnlyList<TensorConfig> declared, IReadOnlyList<TensorConfig> actual, bool batching, string kind)
    {
        if (declared.Count == 0)
        {
            return actual.Select(t => batching ? t with { Dims = t.Dims[1..] } : t).ToList();
        }

        foreach (var tensor in declared)
        {
            var match = actual.FirstOrDefault(a => a.Name == tensor.Name)
                ?? throw new ModelConfigException(
                    $"{kind} '{tensor.Name}' is not in the model; its {kind}s are {string.Join(", ", actual.Select(a => $"'{a.Name}'"))}");
            if (match.DataType != tensor.DataType)
            {
                throw new ModelConfigException(
                    $"{kind} '{tensor.Name}' is {tensor.DataType.ToConfigName()} in the config but {match.DataType.ToConfigName()} in the model");
            }

            var wire = batching ? [-1, .. tensor.Dims] : tensor.Dims;
            if (!Compatible(wire, match.Dims))
            {
                throw new ModelConfigException(
                    $"{kind} '{tensor.Name}' has shape {TensorShape.Format(wire)} by the config but {TensorShape.Format(match.Dims)} in the model");
            }
        }

        if (kind == "input")
        {
            foreach (var tensor in actual)
            {
                if (!declared.Any(d => d.Name == tensor.Name))
                {
                    throw new ModelConfigException($"the model's input '{tensor.Name}' is missing from the config");
                }
            }
        }

        return declared.ToList();
    }

    private static bool AllLeadingDynamic(IReadOnlyList<TensorConfig> tensors) =>
        tensors.Count > 0 && tensors.All(t => t.Dims.Length > 0 && t.Dims[0] == -1);

    private static bool Compatible(long[] a, long[] b)
    {
        if (a.Length != b.Length)
        {
            return false;
        }

        for (var i = 0; i < a.Length; i++)
        {
            if (a[i] >= 0 && b[i] >= 0 && a[i] != b[i])
            {
                return false;
            }
        }

        return true;
    }
}
