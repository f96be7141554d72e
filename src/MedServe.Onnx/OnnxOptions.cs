namespace MedServe.Onnx;

/// <summary>Server-wide ONNX Runtime settings; a model's config.pbtxt parameters override them.</summary>
public sealed class OnnxOptions
{
    /// <summary>"cpu", "cuda", or "auto" (CUDA when the runtime has it, else CPU). A KIND_GPU instance group asks for CUDA too.</summary>
    public string ExecutionProvider { get; set; } = "cpu";

    /// <summary>Threads inside one operator; 0 divides the machine's cores among a model's instances.</summary>
    public int IntraOpThreads { get; set; }

    /// <summary>Threads across independent operators (parallel execution mode only); 0 lets ONNX Runtime choose.</summary>
    public int InterOpThreads { get; set; } = 1;

    public int CudaDeviceId { get; set; }

    /// <summary>ONNX Runtime's CPU memory arena (a model's <c>enable_mem_arena</c> parameter overrides it).</summary>
    public bool EnableMemoryArena { get; set; } = true;

    /// <summary>Let intra-op threads spin between operators: ONNX Runtime's default, measured faster for resnet18 (docs/performance.md).</summary>
    public bool AllowSpinning { get; set; } = true;
}
