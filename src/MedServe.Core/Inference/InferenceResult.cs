using MedServe.Tensors;

namespace MedServe.Inference;

/// <summary>
/// What a model computed. Output data may point into memory the backend owns (an ONNX Runtime
/// tensor); it stays valid until the result is disposed.
/// </summary>
public sealed class InferenceResult(IReadOnlyList<OutputTensor> outputs, IDisposable? owner) : IDisposable
{
    private IDisposable? _owner = owner;

    public IReadOnlyList<OutputTensor> Outputs { get; } = outputs;

    /// <summary>The model version that computed the result.</summary>
    public long ModelVersion { get; set; }

    /// <summary>The experiment and arm that routed this inference, when one did (the response says so).</summary>
    public string? Experiment { get; set; }

    public string? Arm { get; set; }

    public void Dispose()
    {
        _owner?.Dispose();
        _owner = null;
    }
}

/// <summary>An output tensor: raw little-endian elements, or serialized BYTES.</summary>
public sealed class OutputTensor(string name, TensorDataType dataType, long[] shape, ReadOnlyMemory<byte> data)
{
    public string Name { get; } = name;

    public TensorDataType DataType { get; } = dataType;

    public long[] Shape { get; } = shape;

    public ReadOnlyMemory<byte> Data { get; } = data;
}
