using MedServe.Inference;
using MedServe.Repository;
using MedServe.Tensors;

namespace MedServe.Lifecycle;

/// <summary>A request generated from a model's signature: zeros (empty strings for BYTES), batch 1, -1 dimensions as 1.</summary>
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
}
