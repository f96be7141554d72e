using System.Runtime.InteropServices;
using MedServe.Backends;
using MedServe.Inference;
using MedServe.Repository;
using MedServe.Tensors;

namespace MedServe.Tests.Support;

/// <summary>
/// A hand-written model instance: output "y" is input "x" (FP32 [-1, 2]) times two. It records
/// each batch it runs and can be held busy by a gate, so tests control when instances free up.
/// </summary>
internal sealed class DoublingInstance : IModelInstance
{
    private readonly SemaphoreSlim? _gate;

    public DoublingInstance(SemaphoreSlim? gate = null) => _gate = gate;

    public List<long> BatchRows { get; } = [];

    public List<float[]> BatchInputs { get; } = [];

    public List<int> Threads { get; } = [];

    /// <summary>Signalled when a batch starts (before the gate).</summary>
    public SemaphoreSlim Started { get; } = new(0);

    public static ModelConfig Config(DynamicBatchingConfig batching, int maxBatchSize = 8) => new()
    {
        Name = "doubler",
        MaxBatchSize = maxBatchSize,
        Inputs = [new TensorConfig("x", TensorDataType.Fp32, [2])],
        Outputs = [new TensorConfig("y", TensorDataType.Fp32, [2])],
        DynamicBatching = batching,
    };

    public static InferenceRequest Request(params float[] values)
    {
        var request = new InferenceRequest();
        request.Inputs.Add(new InputTensor("x", TensorDataType.Fp32, [values.Length / 2, 2], MemoryMarshal.AsBytes(values.AsSpan()).ToArray()));
        return request;
    }

    public static float[] Values(InferenceResult result) => MemoryMarshal.Cast<byte, float>(result.Outputs[0].Data.Span).ToArray();

    public InferenceResult Execute(InferenceRequest request, IReadOnlyList<TensorConfig> outputs, ref PhaseTimings timings)
    {
        var input = MemoryMarshal.Cast<byte, float>(request.Inputs[0].Data.Span).ToArray();
        lock (BatchRows)
        {
            BatchRows.Add(request.Inputs[0].Shape[0]);
            BatchInputs.Add(input);
            Threads.Add(Environment.CurrentManagedThreadId);
        }

        Started.Release();
        _gate?.Wait();
        var output = input.Select(v => v * 2).ToArray();
        timings.InferNs = 1000;
        return new InferenceResult(
            [new OutputTensor("y", TensorDataType.Fp32, (long[])request.Inputs[0].Shape.Clone(), MemoryMarshal.AsBytes(output.AsSpan()).ToArray())], null);
    }

    public void Dispose()
    {
    }
}
