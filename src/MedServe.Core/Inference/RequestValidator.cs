using MedServe.Repository;
using MedServe.Tensors;

namespace MedServe.Inference;

/// <summary>
/// Checks a request against a model's config before it costs compute: every required input
/// present once, known names, matching datatypes and shapes, data that fills the shape, a batch
/// within max_batch_size, known outputs each asked for once. Returns the outputs to compute.
/// </summary>
public static class RequestValidator
{
    public static IReadOnlyList<TensorConfig> Validate(ModelConfig config, InferenceRequest request)
    {
        // Every frontend, audited or not, refuses a patient_id that cannot be an identifier.
        MedServe.Security.AuditDetails.PatientIdFrom(request.Parameters);

        long batch = -1;
        for (var i = 0; i < request.Inputs.Count; i++)
        {
            var input = request.Inputs[i];
            var declared = Find(config.Inputs, input.Name)
                ?? throw InferenceException.Invalid(
                    $"unexpected input '{input.Name}' for model '{config.Name}'; its inputs are {Names(config.Inputs)}");

            for (var j = 0; j < i; j++)
            {
                if (request.Inputs[j].Name == input.Name)
                {
                    throw InferenceException.Invalid($"input '{input.Name}' is given more than once");
                }
            }

            if (input.DataType != declared.DataType)
            {
                throw InferenceException.Invalid(
                    $"input '{input.Name}' has datatype {input.DataType.ToWireName()}, but model '{config.Name}' expects {declared.DataType.ToWireName()}");
            }

            var expected = config.WireShape(declared);
            if (!TensorShape.Matches(expected, input.Shape))
            {
                throw InferenceException.Invalid(
                    $"input '{input.Name}' has shape {TensorShape.Format(input.Shape)}, but model '{config.Name}' expects {TensorShape.Format(expected)}");
            }

            if (config.MaxBatchSize > 0)
            {
                var size = input.Shape[0];
                if (size > config.MaxBatchSize)
                {
                    throw InferenceException.Invalid(
                        $"input '{input.Name}' has batch size {size}, above model '{config.Name}''s max_batch_size {config.MaxBatchSize}");
                }

                if (batch >= 0 && size != batch)
                {
                    throw InferenceException.Invalid(
                        $"input '{input.Name}' has batch size {size}, but other inputs have {batch}; all inputs share the batch dimension");
                }

                batch = size;
            }

            CheckData(input);
        }

        foreach (var declared in config.Inputs)
        {
            if (!declared.Optional && !Contains(request.Inputs, declared.Name))
            {
                throw InferenceException.Invalid($"input '{declared.Name}' is missing; model '{config.Name}' needs {Names(config.Inputs)}");
            }
        }

        if (request.Outputs is not { Count: > 0 } requested)
        {
            return config.Outputs;
        }

        var outputs = new TensorConfig[requested.Count];
        for (var i = 0; i < requested.Count; i++)
        {
            outputs[i] = Find(config.Outputs, requested[i].Name)
                ?? throw InferenceException.Invalid(
                    $"unexpected output '{requested[i].Name}' for model '{config.Name}'; its outputs are {Names(config.Outputs)}");

            // Each name is a declared output, so this loop meets a repeat within the model's output count.
            for (var j = 0; j < i; j++)
            {
                if (ReferenceEquals(outputs[j], outputs[i]))
                {
                    throw InferenceException.Invalid($"output '{requested[i].Name}' is requested more than once");
                }
            }
        }

        return outputs;
    }

    /// <summary>Checks that an input's data holds exactly as many elements as its shape says.</summary>
    public static void CheckData(InputTensor input)
    {
        var elements = TensorShape.ElementCount(input.Shape);
        if (elements < 0)
        {
            throw InferenceException.Invalid($"input '{input.Name}' has an invalid shape {TensorShape.Format(input.Shape)}");
        }

        if (input.DataType == TensorDataType.Bytes)
        {
            var count = BytesTensor.CountElements(input.Data.Span);
            if (count < 0)
            {
                throw InferenceException.Invalid($"input '{input.Name}': BYTES data is malformed (an element's length runs past the end of the data)");
            }

            if (count != elements)
            {
                throw InferenceException.Invalid(
                    $"input '{input.Name}' has {count} elements, but shape {TensorShape.Format(input.Shape)} needs {elements}");
            }

            return;
        }

        // Compare in elements: the byte count of a huge claimed shape would overflow.
        var size = input.DataType.ElementSize();
        if (input.Data.Length % size != 0 || input.Data.Length / size != elements)
        {
            var needs = elements <= long.MaxValue / size ? $"{elements * size}" : "more than 2^63";
            throw InferenceException.Invalid(
                $"input '{input.Name}' has {input.Data.Length} bytes of data, but shape {TensorShape.Format(input.Shape)} of {input.DataType.ToWireName()} needs {needs}");
        }
    }

    private static TensorConfig? Find(IReadOnlyList<TensorConfig> tensors, string name)
    {
        for (var i = 0; i < tensors.Count; i++)
        {
            if (tensors[i].Name == name)
            {
                return tensors[i];
            }
        }

        return null;
    }

    private static bool Contains(List<InputTensor> inputs, string name)
    {
        for (var i = 0; i < inputs.Count; i++)
        {
            if (inputs[i].Name == name)
            {
                return true;
            }
        }

        return false;
    }

    private static string Names(IReadOnlyList<TensorConfig> tensors) =>
        "[" + string.Join(", ", tensors.Select(t => $"'{t.Name}'")) + "]";
}
