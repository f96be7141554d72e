using System.Globalization;
using System.Text.Json;
using MedServe.Tensors;

namespace MedServe.Repository;

/// <summary>
/// Maps a parsed configuration (config.pbtxt or JSON, see <see cref="ConfigNode"/>) to a
/// <see cref="ModelConfig"/>. Field names are Triton's (model_config.proto); a misspelt field is
/// an error, while Triton fields MedServe does not act on yet are accepted and ignored, so an
/// existing Triton repository loads as is.
/// </summary>
public static class ModelConfigReader
{
    private static readonly HashSet<string> KnownTopLevel =
    [
        "name", "platform", "backend", "runtime", "version_policy", "max_batch_size", "input", "output",
        "batch_input", "batch_output", "optimization", "dynamic_batching", "sequence_batching",
        "ensemble_scheduling", "instance_group", "default_model_filename", "cc_model_filenames",
        "metric_tags", "parameters", "model_warmup", "model_operations", "model_transaction_policy",
        "model_repository_agents", "response_cache",

        // MedServe's own: what the inference journal keeps (Triton ignores nothing it does not know, so this stays MedServe-only).
        "journal", "monitoring",
    ];

    public static ModelConfig ParsePbtxt(string text, string fallbackName, string source = "config.pbtxt") =>
        Read(ProtoTextParser.Parse(text, source), fallbackName, source);

    public static ModelConfig ParseJson(string json, string fallbackName, string source = "config.json")
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new ModelConfigException($"{source}: not valid JSON ({e.Message})");
        }

        using (document)
        {
            return Read(ConfigNode.FromJson(document.RootElement), fallbackName, source);
        }
    }

    public static ModelConfig Read(ConfigNode node, string fallbackName, string source)
    {
        foreach (var (key, _) in node.Fields)
        {
            if (!KnownTopLevel.Contains(key))
            {
                throw new ModelConfigException($"{source}: unknown field '{key}'");
            }
        }

        var context = new Context(source);
        var name = context.String(node, "name") ?? "";
        var config = new ModelConfig
        {
            Name = name.Length > 0 ? name : fallbackName,
            Platform = context.String(node, "platform") ?? "",
            Backend = context.String(node, "backend") ?? "",
            MaxBatchSize = (int)context.Integer(node, "max_batch_size", 0, int.MaxValue),
            Inputs = ReadTensors(context, node, "input"),
            Outputs = ReadTensors(context, node, "output"),
            VersionPolicy = ReadVersionPolicy(context, node.One("version_policy")?.Message),
            InstanceGroups = ReadInstanceGroups(context, node),
            DynamicBatching = node.One("dynamic_batching") is { } batching
                ? ReadDynamicBatching(context, Message(context, batching, "dynamic_batching"))
                : null,
            DefaultModelFilename = ReadModelFilename(context, node),
            Parameters = ReadParameters(context, node),
            Journal = node.One("journal") is { } journal ? ReadJournal(context, Message(context, journal, "journal")) : JournalPolicy.Default,
            Warmup = ReadWarmup(context, node),
            Monitoring = node.One("monitoring") is { } monitoring ? ReadMonitoring(context, Message(context, monitoring, "monitoring")) : MonitoringSpec.Default,
        };

        return config;
    }

    /// <summary>A plain file name in the version folder: a config is hostile, and Path.Combine keeps an absolute path.</summary>
    private static string ReadModelFilename(Context context, ConfigNode node)
    {
        var name = context.String(node, "default_model_filename") ?? "";
        return name.Length == 0 || Files.PathConfinement.IsPlainRelative(name, allowSubfolders: false)
            ? name
            : throw context.Error("default_model_filename must be a plain file name inside the version folder (no '/', '..' or absolute path)");
    }

    /// <summary>
    /// Triton's <c>model_warmup</c>: name, batch_size, count, and inputs as a map of name to
    /// { data_type, dims, zero_data | random_data | input_data_file }. A data file is a plain name
    /// inside the model's warmup/ folder: a config is hostile.
    /// </summary>
    private static List<WarmupSample> ReadWarmup(Context context, ConfigNode node)
    {
        var samples = new List<WarmupSample>();
        var index = 0;
        foreach (var value in node.All("model_warmup"))
        {
            var where = $"model_warmup[{index++}]";
            var sample = Message(context, value, where);
            var inputs = new List<WarmupInput>();
            foreach (var entry in sample.All("inputs"))
            {
                var pair = Message(context, entry, $"{where}.inputs");
                if (pair.One("key") is not null)
                {
                    // Text format: inputs { key: "x" value { ... } }.
                    var key = context.String(pair, "key", $"{where}.inputs") ?? "";
                    inputs.Add(ReadWarmupInput(context, key, pair.One("value") is { } v ? Message(context, v, $"{where}.inputs['{key}']") : null, $"{where}.inputs['{key}']"));
                    continue;
                }

                // JSON mapping of a proto map: "inputs": { "x": { ... } }.
                foreach (var (key, input) in pair.Fields)
                {
                    inputs.Add(ReadWarmupInput(context, key, Message(context, input, $"{where}.inputs['{key}']"), $"{where}.inputs['{key}']"));
                }
            }

            if (inputs.Count == 0)
            {
                throw context.Error($"{where}: a warm-up sample needs at least one input");
            }

            samples.Add(new WarmupSample(
                context.String(sample, "name", where) ?? $"warmup-{index}",
                (int)context.Integer(sample, "batch_size", 0, 1 << 20, where),
                Math.Max(1, (int)context.Integer(sample, "count", 0, 1 << 20, where)),
                inputs));
        }

        return samples;
    }

    private static WarmupInput ReadWarmupInput(Context context, string name, ConfigNode? node, string where)
    {
        if (node is null || string.IsNullOrEmpty(name))
        {
            throw context.Error($"{where}: an input needs a name and a value");
        }

        var typeName = context.String(node, "data_type", where);
        if (!TensorDataTypes.TryParseConfigName(typeName, out var type))
        {
            throw context.Error($"{where}: unknown data_type '{typeName}'");
        }

        var dims = node.All("dims").Select(d => context.ParseInteger(d, $"{where}.dims", 0, int.MaxValue)).ToArray();
        var file = context.String(node, "input_data_file", where);
        var kinds = (context.Bool(node, "zero_data", where) ? 1 : 0) + (context.Bool(node, "random_data", where) ? 1 : 0) + (file is null ? 0 : 1);
        if (kinds != 1)
        {
            throw context.Error($"{where}: give exactly one of zero_data: true, random_data: true or input_data_file");
        }

        if (file is not null && !Files.PathConfinement.IsPlainRelative(file, allowSubfolders: false))
        {
            throw context.Error($"{where}: input_data_file must be a plain file name inside the model's warmup/ folder (no '/', '..' or absolute path)");
        }

        var data = file is not null ? WarmupData.File : context.Bool(node, "random_data", where) ? WarmupData.Random : WarmupData.Zero;
        return new WarmupInput(name, type, dims, data, file);
    }

    private static JournalPolicy ReadJournal(Context context, ConfigNode node)
    {
        const string where = "journal";
        foreach (var (key, _) in node.Fields)
        {
            if (key is not ("max_input_bytes" or "sample_rate"))
            {
                throw context.Error($"{where}: unknown field '{key}' (expected max_input_bytes or sample_rate)");
            }
        }

        long? cap = node.One("max_input_bytes") is null ? null : context.Integer(node, "max_input_bytes", 0, int.MaxValue, where);
        var rate = 1.0;
        if (node.One("sample_rate") is { } value)
        {
            if (value.Scalar is null || !double.TryParse(value.Scalar, NumberStyles.Float, CultureInfo.InvariantCulture, out rate) || !(rate is >= 0 and <= 1))
            {
                throw context.Error($"{where}.sample_rate: expected a number from 0 to 1, found '{value}'");
            }
        }

        return new JournalPolicy(cap, rate);
    }

    /// <summary>
    /// <c>monitoring { score_output positive_index threshold subgroups subgroup_margin feature_names output_range { min max } }</c>;
    /// also what the registry's monitoring spec holds (<see cref="ParseMonitoringJson"/>).
    /// </summary>
    private static MonitoringSpec ReadMonitoring(Context context, ConfigNode node)
    {
        const string where = "monitoring";
        string[] known = ["score_output", "positive_index", "threshold", "subgroups", "subgroup_margin", "feature_names", "output_range", "drift"];
        foreach (var (key, _) in node.Fields)
        {
            if (!known.Contains(key))
            {
                throw context.Error($"{where}: unknown field '{key}' (expected {string.Join(", ", known)})");
            }
        }

        var subgroups = node.All("subgroups").Select(v => v.Scalar ?? throw context.Error($"{where}.subgroups: expected names")).ToList();
        foreach (var subgroup in subgroups)
        {
            if (!MonitoringSpec.SubgroupName().IsMatch(subgroup) || subgroup is "patient_id" or "experiment" or "arm")
            {
                throw context.Error($"{where}.subgroups: '{(subgroup.Length > 64 ? subgroup[..64] : subgroup)}' is not a parameter name (a lower-case letter, then up to 63 of a-z, 0-9, _; never patient_id, experiment or arm)");
            }
        }

        if (subgroups.Distinct(StringComparer.Ordinal).Count() != subgroups.Count || subgroups.Count > 16)
        {
            throw context.Error($"{where}.subgroups: at most 16, each named once");
        }

        var features = node.All("feature_names").Select(v => v.Scalar is { Length: > 0 and <= 128 } name ? name : throw context.Error($"{where}.feature_names: expected names of 1 to 128 characters")).ToList();
        double? min = null, max = null;
        if (node.One("output_range") is { } range)
        {
            var message = Message(context, range, $"{where}.output_range");
            min = message.One("min") is null ? null : Number(context, message, "min", $"{where}.output_range", double.MinValue, double.MaxValue);
            max = message.One("max") is null ? null : Number(context, message, "max", $"{where}.output_range", double.MinValue, double.MaxValue);
            if (min > max)
            {
                throw context.Error($"{where}.output_range: min is above max");
            }
        }

        double alpha = 0.05, share = 0.5;
        var overrides = new Dictionary<string, DriftFeatureOverride>(StringComparer.Ordinal);
        if (node.One("drift") is { } driftValue)
        {
            var drift = Message(context, driftValue, $"{where}.drift");
            foreach (var (key, _) in drift.Fields)
            {
                if (key is not ("alpha" or "share" or "feature"))
                {
                    throw context.Error($"{where}.drift: unknown field '{key}' (expected alpha, share or feature)");
                }
            }

            alpha = drift.One("alpha") is null ? 0.05 : Number(context, drift, "alpha", $"{where}.drift", 1e-9, 0.5);
            share = drift.One("share") is null ? 0.5 : Number(context, drift, "share", $"{where}.drift", 1e-9, 1);
            var index = 0;
            foreach (var entry in drift.All("feature"))
            {
                var at = $"{where}.drift.feature[{index++}]";
                var feature = Message(context, entry, at);
                var name = context.String(feature, "name", at);
                var test = context.String(feature, "test", at);
                if (string.IsNullOrEmpty(name) || name.Length > 128)
                {
                    throw context.Error($"{at}: 'name' (1 to 128 characters) is required");
                }

                if (test is not null && !DriftTestNames.Contains(test))
                {
                    throw context.Error($"{at}: test '{(test.Length > 32 ? test[..32] : test)}' is not one of {string.Join(", ", DriftTestNames)}");
                }

                overrides[name] = new DriftFeatureOverride(test, feature.One("threshold") is null ? null : Number(context, feature, "threshold", at, 0, double.MaxValue));
            }
        }

        var output = context.String(node, "score_output", where);
        return new MonitoringSpec
        {
            DriftAlpha = alpha,
            DriftShare = share,
            DriftOverrides = overrides,
            ScoreOutput = string.IsNullOrEmpty(output) ? null : output,
            PositiveIndex = node.One("positive_index") is null ? null : (int)context.Integer(node, "positive_index", 0, 1 << 20, where),
            Threshold = node.One("threshold") is null ? 0.5 : Number(context, node, "threshold", where, double.Epsilon, 1 - 1e-12),
            Subgroups = subgroups,
            SubgroupMargin = node.One("subgroup_margin") is null ? 0.05 : Number(context, node, "subgroup_margin", where, 0, 1),
            FeatureNames = features,
            OutputMin = min,
            OutputMax = max,
        };
    }

    /// <summary>The drift tests a feature may be given (MedServe.Stats.Drift.DriftDetector runs them).</summary>
    public static readonly IReadOnlyList<string> DriftTestNames = ["ks", "chisquare", "ztest", "wasserstein", "jensenshannon", "psi"];

    /// <summary>A monitoring spec on its own, in config.json's form (the registry's versioned spec).</summary>
    public static MonitoringSpec ParseMonitoringJson(string json, string source = "monitoring")
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new ModelConfigException($"{source}: expected a JSON object");
            }

            return ReadMonitoring(new Context(source), ConfigNode.FromJson(document.RootElement));
        }
        catch (JsonException e)
        {
            throw new ModelConfigException($"{source}: not valid JSON ({e.Message})");
        }
    }

    private static double Number(Context context, ConfigNode node, string field, string where, double min, double max)
    {
        var value = node.One(field);
        if (value?.Scalar is null || !double.TryParse(value.Scalar, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) || !double.IsFinite(number))
        {
            throw context.Error($"{where}.{field}: expected a number, found '{value}'");
        }

        return number >= min && number <= max ? number : throw context.Error($"{where}.{field}: {number} is out of range");
    }

    private static List<TensorConfig> ReadTensors(Context context, ConfigNode node, string field)
    {
        var tensors = new List<TensorConfig>();
        var index = 0;
        foreach (var value in node.All(field))
        {
            var where = $"{field}[{index++}]";
            var tensor = Message(context, value, where);
            var name = context.String(tensor, "name", where);
            if (string.IsNullOrEmpty(name))
            {
                throw context.Error($"{where}: 'name' is required");
            }

            var typeName = context.String(tensor, "data_type", where);
            if (!TensorDataTypes.TryParseConfigName(typeName, out var type))
            {
                throw context.Error($"{where} '{name}': unknown data_type '{typeName}'");
            }

            var dims = tensor.All("dims").Select(d => context.ParseInteger(d, $"{where}.dims", -1, long.MaxValue)).ToArray();
            tensors.Add(new TensorConfig(name, type, dims)
            {
                Optional = context.Bool(tensor, "optional", where),
            });
        }

        return tensors;
    }

    private static VersionPolicy ReadVersionPolicy(Context context, ConfigNode? node)
    {
        if (node is null)
        {
            return VersionPolicy.Latest(1);
        }

        if (node.One("latest") is { } latest)
        {
            var count = context.Integer(Message(context, latest, "version_policy.latest"), "num_versions", 1, int.MaxValue, "version_policy.latest");
            return VersionPolicy.Latest((int)count);
        }

        if (node.One("all") is not null)
        {
            return VersionPolicy.All;
        }

        if (node.One("specific") is { } specific)
        {
            var versions = Message(context, specific, "version_policy.specific").All("versions")
                .Select(v => context.ParseInteger(v, "version_policy.specific.versions", 0, long.MaxValue)).ToList();
            return VersionPolicy.Specific(versions);
        }

        throw context.Error("version_policy: expected one of latest, all, specific");
    }

    private static List<InstanceGroupConfig> ReadInstanceGroups(Context context, ConfigNode node)
    {
        var groups = new List<InstanceGroupConfig>();
        var index = 0;
        foreach (var value in node.All("instance_group"))
        {
            var where = $"instance_group[{index++}]";
            var group = Message(context, value, where);
            var kindName = context.String(group, "kind", where) ?? "KIND_AUTO";
            var kind = kindName switch
            {
                "KIND_AUTO" => InstanceKind.Auto,
                "KIND_CPU" => InstanceKind.Cpu,
                "KIND_GPU" => InstanceKind.Gpu,
                "KIND_MODEL" => InstanceKind.Model,
                _ => throw context.Error($"{where}: unknown kind '{kindName}'"),
            };
            var count = group.One("count") is null ? 1 : (int)context.Integer(group, "count", 1, 1024, where);
            var gpus = group.All("gpus").Select(g => (int)context.ParseInteger(g, $"{where}.gpus", 0, 1024)).ToList();
            groups.Add(new InstanceGroupConfig(context.String(group, "name", where) ?? "", kind, count) { Gpus = gpus });
        }

        return groups;
    }

    private static DynamicBatchingConfig ReadDynamicBatching(Context context, ConfigNode node)
    {
        const string where = "dynamic_batching";
        var priorityPolicies = new Dictionary<long, QueuePolicyConfig>();
        foreach (var entry in node.All("priority_queue_policy"))
        {
            var pair = Message(context, entry, $"{where}.priority_queue_policy");
            if (pair.One("key") is not null)
            {
                // Text format: priority_queue_policy { key: 1 value { ... } }.
                var key = context.Integer(pair, "key", 0, long.MaxValue, $"{where}.priority_queue_policy");
                priorityPolicies[key] = pair.One("value") is { } v
                    ? ReadQueuePolicy(context, Message(context, v, $"{where}.priority_queue_policy"))
                    : new QueuePolicyConfig();
                continue;
            }

            // JSON mapping of a proto map: "priority_queue_policy": { "1": { ... } }.
            foreach (var (level, policy) in pair.Fields)
            {
                var key = context.ParseInteger(ConfigValue.Of(level, quoted: false), $"{where}.priority_queue_policy", 0, long.MaxValue);
                priorityPolicies[key] = ReadQueuePolicy(context, Message(context, policy, $"{where}.priority_queue_policy"));
            }
        }

        return new DynamicBatchingConfig
        {
            PreferredBatchSize = node.All("preferred_batch_size").Select(v => (int)context.ParseInteger(v, $"{where}.preferred_batch_size", 1, int.MaxValue)).ToList(),
            MaxQueueDelayMicroseconds = context.Integer(node, "max_queue_delay_microseconds", 0, long.MaxValue, where),
            PreserveOrdering = context.Bool(node, "preserve_ordering", where),
            PriorityLevels = context.Integer(node, "priority_levels", 0, long.MaxValue, where),
            DefaultPriorityLevel = context.Integer(node, "default_priority_level", 0, long.MaxValue, where),
            DefaultQueuePolicy = node.One("default_queue_policy") is { } queuePolicy
                ? ReadQueuePolicy(context, Message(context, queuePolicy, $"{where}.default_queue_policy"))
                : null,
            PriorityQueuePolicy = priorityPolicies,
        };
    }

    private static QueuePolicyConfig ReadQueuePolicy(Context context, ConfigNode node)
    {
        const string where = "queue_policy";
        var action = context.String(node, "timeout_action", where) ?? "REJECT";
        if (action is not ("REJECT" or "DELAY"))
        {
            throw context.Error($"{where}: timeout_action must be REJECT or DELAY, not '{action}'");
        }

        return new QueuePolicyConfig
        {
            TimeoutAction = action,
            DefaultTimeoutMicroseconds = context.Integer(node, "default_timeout_microseconds", 0, long.MaxValue, where),
            AllowTimeoutOverride = context.Bool(node, "allow_timeout_override", where),
            MaxQueueSize = (int)context.Integer(node, "max_queue_size", 0, int.MaxValue, where),
        };
    }

    private static Dictionary<string, string> ReadParameters(Context context, ConfigNode node)
    {
        var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var value in node.All("parameters"))
        {
            var entry = Message(context, value, "parameters");
            // A scalar "key" marks the text form; in the JSON map form "key" would be a parameter's name.
            if (entry.One("key")?.Scalar is { } key)
            {
                // Text format: parameters { key: "k" value { string_value: "v" } }.
                var inner = entry.One("value")?.Message;
                parameters[key] = inner is null ? "" : context.String(inner, "string_value", $"parameters '{key}'") ?? "";
                continue;
            }

            // JSON mapping of a proto map: "parameters": { "k": { "string_value": "v" } }.
            foreach (var (name, item) in entry.Fields)
            {
                var inner = Message(context, item, $"parameters '{name}'");
                parameters[name] = context.String(inner, "string_value", $"parameters '{name}'") ?? "";
            }
        }

        return parameters;
    }

    private static ConfigNode Message(Context context, ConfigValue value, string where) =>
        value.Message ?? throw context.Error($"{where}: expected a message {{ ... }}, found '{value}'");

    private sealed class Context(string source)
    {
        public ModelConfigException Error(string message) => new($"{source}: {message}");

        public string? String(ConfigNode node, string field, string? where = null)
        {
            var value = node.One(field);
            if (value is null)
            {
                return null;
            }

            return value.Scalar ?? throw Error($"{Prefix(where)}{field}: expected a single value");
        }

        public long Integer(ConfigNode node, string field, long min, long max, string? where = null)
        {
            var value = node.One(field);
            return value is null ? Math.Max(0, min) : ParseInteger(value, $"{Prefix(where)}{field}", min, max);
        }

        public long ParseInteger(ConfigValue value, string where, long min, long max)
        {
            if (value.Scalar is null
                || !long.TryParse(value.Scalar, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var number))
            {
                throw Error($"{where}: expected an integer, found '{value}'");
            }

            if (number < min || number > max)
            {
                throw Error($"{where}: {number} is out of range [{min}, {max}]");
            }

            return number;
        }

        public bool Bool(ConfigNode node, string field, string where)
        {
            var value = node.One(field);
            if (value is null)
            {
                return false;
            }

            return value.Scalar switch
            {
                "true" or "True" or "1" => true,
                "false" or "False" or "0" => false,
                _ => throw Error($"{where}.{field}: expected true or false, found '{value}'"),
            };
        }

        private static string Prefix(string? where) => where is null ? "" : where + ".";
    }
}
