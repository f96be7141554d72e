using MedServe.Inference;
using MedServe.Repository;

namespace MedServe.Backends;

/// <summary>
/// A kind of model file MedServe can run (ONNX today). Backends compute; the core validates
/// requests, queues them and keeps the books.
/// </summary>
public interface IModelBackend
{
    /// <summary>The platform name reported in metadata, e.g. "onnxruntime_onnx".</summary>
    string Platform { get; }

    /// <summary>True when this backend runs models with the given config's platform/backend.</summary>
    bool Handles(ModelConfig config);

    /// <summary>Reads the model file's own signature: tensor names, types and full shapes (-1 where dynamic).</summary>
    ModelSignature Inspect(string modelPath);

    /// <summary>Creates one execution instance of a model version (an ONNX Runtime session).</summary>
    IModelInstance CreateInstance(ModelConfig config, string modelPath, int instanceIndex);
}

/// <summary>One execution instance; the core hands it one request at a time.</summary>
public interface IModelInstance : IDisposable
{
    /// <summary>Runs a validated request and returns the requested outputs, timing its phases.</summary>
    InferenceResult Execute(InferenceRequest request, IReadOnlyList<TensorConfig> outputs, ref PhaseTimings timings);
}

/// <summary>Nanoseconds spent in each compute phase, as Triton's statistics split them.</summary>
public struct PhaseTimings
{
    public long InputNs;
    public long InferNs;
    public long OutputNs;
}

/// <summary>A model file's own inputs and outputs, full shapes with -1 for dynamic dimensions.</summary>
public sealed record ModelSignature(IReadOnlyList<TensorConfig> Inputs, IReadOnlyList<TensorConfig> Outputs);
