using MedServe.Tensors;

namespace MedServe.Repository;

/// <summary>
/// A model's configuration: Triton's ModelConfig, the part MedServe acts on. Immutable; a
/// reload builds a new one. Read from config.pbtxt or config.json (see <see cref="ModelConfigReader"/>).
/// </summary>
public sealed record ModelConfig
{
    public const string OnnxPlatform = "onnxruntime_onnx";
    public const string OnnxBackend = "onnxruntime";

    public required string Name { get; init; }

    public string Platform { get; init; } = "";

    public string Backend { get; init; } = "";

    /// <summary>0: no batch dimension in the dims; above 0: every tensor has a leading batch dimension up to this size.</summary>
    public int MaxBatchSize { get; init; }

    public IReadOnlyList<TensorConfig> Inputs { get; init; } = [];

    public IReadOnlyList<TensorConfig> Outputs { get; init; } = [];

    public VersionPolicy VersionPolicy { get; init; } = VersionPolicy.Latest(1);

    public IReadOnlyList<InstanceGroupConfig> InstanceGroups { get; init; } = [];

    public DynamicBatchingConfig? DynamicBatching { get; init; }

    public string DefaultModelFilename { get; init; } = "";

    /// <summary>Backend parameters (Triton's <c>parameters { key value { string_value } }</c>).</summary>
    public IReadOnlyDictionary<string, string> Parameters { get; init; } = new Dictionary<string, string>();

    /// <summary>Triton's <c>model_warmup</c>: the requests a version must answer before it serves; empty: one generated from the signature.</summary>
    public IReadOnlyList<WarmupSample> Warmup { get; init; } = [];

    /// <summary>What the journal keeps of this model's inferences (MedServe's own <c>journal { }</c> block).</summary>
    public JournalPolicy Journal { get; init; } = JournalPolicy.Default;

    /// <summary>How this model's predictions are judged (MedServe's own <c>monitoring { }</c> block).</summary>
    public MonitoringSpec Monitoring { get; init; } = MonitoringSpec.Default;

    /// <summary>The file each version folder holds.</summary>
    public string ModelFilename => DefaultModelFilename.Length > 0 ? DefaultModelFilename : "model.onnx";

    /// <summary>Total instances across instance groups (1 when none is configured).</summary>
    public int InstanceCount
    {
        get
        {
            var count = 0;
            foreach (var group in InstanceGroups)
            {
                count += group.Count;
            }

            return Math.Max(count, 1);
        }
    }

    /// <summary>True when an instance group asks for a GPU.</summary>
    public bool WantsGpu
    {
        get
        {
            foreach (var group in InstanceGroups)
            {
                if (group.Kind == InstanceKind.Gpu)
                {
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>The shape a tensor has on the wire: the batch dimension (-1) first when batching.</summary>
    public long[] WireShape(TensorConfig tensor)
    {
        if (MaxBatchSize <= 0)
        {
            return tensor.Dims;
        }

        var shape = new long[tensor.Dims.Length + 1];
        shape[0] = -1;
        tensor.Dims.CopyTo(shape, 1);
        return shape;
    }
}

public sealed record TensorConfig(string Name, TensorDataType DataType, long[] Dims)
{
    public bool Optional { get; init; }
}

public enum VersionPolicyKind
{
    Latest,
    All,
    Specific,
}

/// <summary>Which version folders are served: the latest N, all, or a given list.</summary>
public sealed record VersionPolicy(VersionPolicyKind Kind, int NumVersions, IReadOnlyList<long> Versions)
{
    public static VersionPolicy Latest(int count) => new(VersionPolicyKind.Latest, count, []);

    public static VersionPolicy All { get; } = new(VersionPolicyKind.All, 0, []);

    public static VersionPolicy Specific(IReadOnlyList<long> versions) => new(VersionPolicyKind.Specific, 0, versions);

    /// <summary>Picks the versions to serve from those found on disk, highest first.</summary>
    public IReadOnlyList<long> Select(IEnumerable<long> available)
    {
        var sorted = available.Distinct().OrderDescending().ToList();
        return Kind switch
        {
            VersionPolicyKind.Latest => sorted.Take(Math.Max(NumVersions, 1)).ToList(),
            VersionPolicyKind.All => sorted,
            _ => sorted.Where(Versions.Contains).ToList(),
        };
    }
}

public enum InstanceKind
{
    Auto,
    Cpu,
    Gpu,
    Model,
}

public sealed record InstanceGroupConfig(string Name, InstanceKind Kind, int Count)
{
    public IReadOnlyList<int> Gpus { get; init; } = [];
}

/// <summary>Triton's dynamic_batching block, kept whole for the scheduler.</summary>
public sealed record DynamicBatchingConfig
{
    public IReadOnlyList<int> PreferredBatchSize { get; init; } = [];

    public long MaxQueueDelayMicroseconds { get; init; }

    public bool PreserveOrdering { get; init; }

    public long PriorityLevels { get; init; }

    public long DefaultPriorityLevel { get; init; }

    public QueuePolicyConfig? DefaultQueuePolicy { get; init; }

    public IReadOnlyDictionary<long, QueuePolicyConfig> PriorityQueuePolicy { get; init; } =
        new Dictionary<long, QueuePolicyConfig>();
}

public sealed record QueuePolicyConfig
{
    /// <summary>REJECT or DELAY.</summary>
    public string TimeoutAction { get; init; } = "REJECT";

    public long DefaultTimeoutMicroseconds { get; init; }

    public bool AllowTimeoutOverride { get; init; }

    public int MaxQueueSize { get; init; }
}

/// <summary>
/// <c>journal { max_input_bytes: 65536 sample_rate: 1.0 }</c>: inputs over the cap are kept as a
/// digest and summary; a sample rate under 1 keeps that share of payloads (every record is still written).
/// </summary>
public sealed record JournalPolicy(long? MaxInputBytes, double SampleRate)
{
    public static readonly JournalPolicy Default = new(null, 1.0);
}

/// <summary>How a warm-up input is filled: zeros, seeded random values, or a raw file in the model's <c>warmup/</c> folder.</summary>
public enum WarmupData
{
    Zero,
    Random,
    File,
}

/// <summary>One input of a warm-up sample: its dims without the batch dimension, as in Triton.</summary>
public sealed record WarmupInput(string Name, TensorDataType DataType, IReadOnlyList<long> Dims, WarmupData Data, string? File);

/// <summary>One <c>model_warmup</c> entry: a request of <see cref="BatchSize"/>, sent <see cref="Count"/> times.</summary>
public sealed record WarmupSample(string Name, int BatchSize, int Count, IReadOnlyList<WarmupInput> Inputs);
