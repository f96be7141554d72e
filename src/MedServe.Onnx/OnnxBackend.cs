using MedServe.Backends;
using MedServe.Files;
using MedServe.Lifecycle;
using MedServe.Onnx.Graph;
using MedServe.Repository;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.ML.OnnxRuntime;

namespace MedServe.Onnx;

/// <summary>Runs ONNX models with ONNX Runtime: one <see cref="InferenceSession"/> per instance.</summary>
public sealed partial class OnnxBackend(IOptions<OnnxOptions> options, ILogger<OnnxBackend> logger) : IModelBackend
{
    private readonly OnnxOptions _options = options.Value;

    // Files whose external data was checked, by path, length and write time: a version loads one
    // signature read and N instances, and parsing a 45 MB graph once is enough.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (long Length, DateTime Written)> _checked = new(StringComparer.Ordinal);

    public string Platform => ModelConfig.OnnxPlatform;

    public bool Handles(ModelConfig config) =>
        config.Platform is ModelConfig.OnnxPlatform || config.Backend is ModelConfig.OnnxBackend
        || (config.Platform.Length == 0 && config.Backend.Length == 0);

    public ModelSignature Inspect(string modelPath)
    {
        using var sessionOptions = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL };
        var file = OnnxModelFile.Read(modelPath);
        CheckExternalData(modelPath, file);
        using var session = OpenSession(modelPath, sessionOptions);
        return new ModelSignature(
            ReadTensors(session.InputMetadata, "input", file),
            ReadTensors(session.OutputMetadata, "output", file));
    }

    public IModelInstance CreateInstance(ModelConfig config, string modelPath, int instanceIndex)
    {
        var sessionOptions = CreateSessionOptions(config);
        try
        {
            if (!_checked.TryGetValue(modelPath, out var seen) || seen != Stamp(modelPath))
            {
                CheckExternalData(modelPath, OnnxModelFile.Read(modelPath));
            }

            var session = OpenSession(modelPath, sessionOptions);
            return new OnnxModelInstance(session, sessionOptions);
        }
        catch
        {
            sessionOptions.Dispose();
            throw;
        }
    }

    internal SessionOptions CreateSessionOptions(ModelConfig config)
    {
        var sessionOptions = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = Parameter(config, "execution_mode", 0) == 1 ? ExecutionMode.ORT_PARALLEL : ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = Parameter(config, "intra_op_thread_count", _options.IntraOpThreads) is > 0 and var intra
                ? intra
                : Math.Max(1, Environment.ProcessorCount / config.InstanceCount),
            InterOpNumThreads = Math.Max(0, Parameter(config, "inter_op_thread_count", _options.InterOpThreads)),

            // Triton's ONNX Runtime backend keys; the arena trades resident memory for allocation speed.
            EnableCpuMemArena = Parameter(config, "enable_mem_arena", _options.EnableMemoryArena ? 1 : 0) == 1,
            EnableMemoryPattern = Parameter(config, "enable_mem_pattern", 1) == 1,
        };

        // Spinning intra-op threads cost CPU the HTTP threads could use, but save a sleep and a wake
        // between operators: on by default (faster for resnet18, measured), off per model or server-wide.
        sessionOptions.AddSessionConfigEntry("session.intra_op.allow_spinning", Parameter(config, "allow_spinning", _options.AllowSpinning ? 1 : 0) == 1 ? "1" : "0");

        var provider = _options.ExecutionProvider.ToLowerInvariant();
        if (provider is "cuda" or "auto" || config.WantsGpu)
        {
            try
            {
                sessionOptions.AppendExecutionProvider_CUDA(_options.CudaDeviceId);
                LogProvider(config.Name, "CUDA");
            }
            catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
            {
                if (provider == "cuda")
                {
                    sessionOptions.Dispose();
                    throw new BackendLoadException($"the CUDA execution provider is configured but not available: {e.Message}", e);
                }

                LogCudaMissing(config.Name);
            }
        }

        return sessionOptions;
    }

    /// <summary>Refuses a model whose external data leaves its folder, before ONNX Runtime opens it; remembers the file as checked.</summary>
    private void CheckExternalData(string modelPath, OnnxModelFile file)
    {
        file.CheckExternalData(Path.GetDirectoryName(Path.GetFullPath(modelPath))!);
        if (_checked.Count >= 1024)
        {
            _checked.Clear(); // registrations stage under fresh names: keep the memo small
        }

        _checked[modelPath] = Stamp(modelPath);
    }

    private static (long, DateTime) Stamp(string path)
    {
        var info = new FileInfo(path);
        return info.Exists ? (info.Length, info.LastWriteTimeUtc) : (-1, default);
    }

    private static InferenceSession OpenSession(string modelPath, SessionOptions sessionOptions)
    {
        try
        {
            return new InferenceSession(modelPath, sessionOptions);
        }
        catch (OnnxRuntimeException e)
        {
            // ONNX Runtime's messages quote absolute paths: the caller learns what failed, not where the server keeps it.
            throw new BackendLoadException($"ONNX Runtime cannot load {Path.GetFileName(modelPath)}: {ServerPaths.Scrub(e.Message)}", e);
        }
    }

    private static List<TensorConfig> ReadTensors(IReadOnlyDictionary<string, NodeMetadata> metadata, string kind, OnnxModelFile file)
    {
        var tensors = new List<TensorConfig>();
        foreach (var (name, node) in metadata)
        {
            if (!node.IsTensor || !OnnxTypes.TryToDataType(node.ElementDataType, out var type))
            {
                throw new BackendLoadException($"the model's {kind} '{name}' is not a tensor of a supported type");
            }

            // The file's own dims where it declares them: ONNX Runtime's int dims turn 2^40 into 0.
            var dims = file.DeclaredDims(name) is { } declared && declared.Length == node.Dimensions.Length
                ? declared
                : node.Dimensions.Select(d => (long)(d < 0 ? -1 : d)).ToArray();
            tensors.Add(new TensorConfig(name, type, dims));
        }

        return tensors;
    }

    private static int Parameter(ModelConfig config, string key, int fallback) =>
        config.Parameters.TryGetValue(key, out var text) && int.TryParse(text, out var value) ? value : fallback;

    [LoggerMessage(EventId = 200, Level = LogLevel.Information, Message = "Model {Model} runs on the {Provider} execution provider")]
    private partial void LogProvider(string model, string provider);

    [LoggerMessage(EventId = 201, Level = LogLevel.Warning, Message = "Model {Model} asked for CUDA, which this ONNX Runtime lacks; it runs on the CPU")]
    private partial void LogCudaMissing(string model);
}
