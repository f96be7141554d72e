using MedServe.Buffers;
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

    private long _reserved;

    public string? Id { get; set; }

    /// <summary>What the experiment layer noted when it routed this request (opaque to the core).</summary>
    public object? Experiment { get; set; }

    public Dictionary<string, InferenceParameter>? Parameters { get; set; }

    public List<InputTensor> Inputs { get; } = [];

    /// <summary>The outputs asked for; null means every output of the model.</summary>
    public List<RequestedOutput>? Outputs { get; set; }

    /// <summary>
    /// Where the arrays this request owns are counted while it lives (the frontends' requests);
    /// null for none (a batch assembled from counted requests).
    /// </summary>
    public InFlightBytes? Budget { get; init; }

    /// <summary>Given the inputs and outputs once the model has answered (the journal's payload); null for none.</summary>
    public MedServe.Predictions.IPredictionSink? Sink { get; set; }

    /// <summary>
    /// Hands an array from <see cref="BodyBuffers.Rent"/> to the request, which gives it back on
    /// dispose. Past the budget's cap it is given back at once and the request refused.
    /// </summary>
    public void Own(byte[] pooled)
    {
        if (Budget is { } budget)
        {
            if (!budget.TryReserve(pooled.Length))
            {
                BodyBuffers.Return(pooled);
                throw budget.Refusal();
            }

            _reserved += pooled.Length;
        }

        (_rented ??= []).Add(pooled);
    }

    /// <summary>Counts, for the request's life, bytes it holds elsewhere (a gRPC message's raw contents); past the cap the request is refused.</summary>
    public void Count(long bytes)
    {
        if (Budget is { } budget)
        {
            if (!budget.TryReserve(bytes))
            {
                throw budget.Refusal();
            }

            _reserved += bytes;
        }
    }

    public void Dispose()
    {
        if (_rented is not null)
        {
            foreach (var array in _rented)
            {
                BodyBuffers.Return(array);
            }

            _rented = null;
        }

        Budget?.Release(_reserved);
        _reserved = 0;
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
