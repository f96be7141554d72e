using System.Buffers;
using MedServe.Tensors;

namespace MedServe.Inference;

/// <summary>
/// One inference request, as the frontends hand it to the core. Tensor data stays where the
/// frontend put it (a slice of the request body, or a pooled buffer it decoded JSON into);
/// the request owns those buffers and returns them to the pool when disposed.
/// </summary>
public sealed class InferenceRequest : IDisposable
{
    private List<byte[]>? _rented;

    public string? Id { get; set; }

    public Dictionary<string, InferenceParameter>? Parameters { get; set; }

    public List<InputTensor> Inputs { get; } = [];

    /// <summary>The outputs asked for; null means every output of the model.</summary>
    public List<RequestedOutput>? Outputs { get; set; }

    /// <summary>Hands a pooled array to the request, which returns it to the pool on dispose.</summary>
    public void Own(byte[] pooled) => (_rented ??= []).Add(pooled);

    public void Dispose()
    {
        if (_rented is null)
        {
            return;
        }

        foreach (var array in _rented)
        {
            ArrayPool<byte>.Shared.Return(array);
        }

        _rented = null;
    }
}

/// <summary>An input tensor: raw little-endian elements, or serialized BYTES (see <see cref="BytesTensor"/>).</summary>
public sealed class InputTensor(string name, TensorDataType dataType, long[] shape, ReadOnlyMemory<byte> data)
{
    public string Name { get; } = name;

    public TensorDataType DataType { get; } = dataType;

    public long[] Shape { get; } = shape;

    public ReadOnlyMemory<byte> Data { get; } = data;

    public Dictionary<string, InferenceParameter>? Parameters { get; init; }
}

/// <summary>An output the client asked for, with its parameters (binary_data among them).</summary>
public sealed class RequestedOutput(string name)
{
    public string Name { get; } = name;

    public Dictionary<string, InferenceParameter>? Parameters { get; init; }
}
