using System.Text.Json;

namespace MedServe.Repository;

/// <summary>
/// Writes a <see cref="ModelConfig"/> as Triton does for GET v2/models/{m}/config: protobuf's
/// JSON mapping with the proto field names, scalars always printed, int64 values as numbers.
/// <see cref="ModelConfigReader.ParseJson"/> reads the same form back.
/// </summary>
public static class ModelConfigJson
{
    public static void Write(Utf8JsonWriter writer, ModelConfig config)
    {
        writer.WriteStartObject();
        writer.WriteString("name", config.Name);
        writer.WriteString("platform", config.Platform);
        writer.WriteString("backend", config.Backend);
        WriteVersionPolicy(writer, config.VersionPolicy);
        writer.WriteNumber("max_batch_size", config.MaxBatchSize);
        WriteTensors(writer, "input", config.Inputs, isInput: true);
        WriteTensors(writer, "output", config.Outputs, isInput: false);

        writer.WriteStartArray("instance_group");
        foreach (var group in config.InstanceGroups)
        {
            writer.WriteStartObject();
            writer.WriteString("name", group.Name);
            writer.WriteString("kind", group.Kind switch
            {
                InstanceKind.Cpu => "KIND_CPU",
                InstanceKind.Gpu => "KIND_GPU",
                InstanceKind.Model => "KIND_MODEL",
                _ => "KIND_AUTO",
            });
            writer.WriteNumber("count", group.Count);
            writer.WriteStartArray("gpus");
            foreach (var gpu in group.Gpus)
            {
                writer.WriteNumberValue(gpu);
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        writer.WriteEndArray();

        if (config.DynamicBatching is { } batching)
        {
            WriteDynamicBatching(writer, batching);
        }

        writer.WriteString("default_model_filename", config.ModelFilename);
        writer.WriteStartObject("parameters");
        foreach (var (key, value) in config.Parameters)
        {
            writer.WriteStartObject(key);
            writer.WriteString("string_value", value);
            writer.WriteEndObject();
        }

        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    public static string ToJson(ModelConfig config)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            Write(writer, config);
        }

        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void WriteVersionPolicy(Utf8JsonWriter writer, VersionPolicy policy)
    {
        writer.WriteStartObject("version_policy");
        switch (policy.Kind)
        {
            case VersionPolicyKind.Latest:
                writer.WriteStartObject("latest");
                writer.WriteNumber("num_versions", policy.NumVersions);
                writer.WriteEndObject();
                break;
            case VersionPolicyKind.All:
                writer.WriteStartObject("all");
                writer.WriteEndObject();
                break;
            default:
                writer.WriteStartObject("specific");
                writer.WriteStartArray("versions");
                foreach (var version in policy.Versions)
                {
                    writer.WriteNumberValue(version);
                }

                writer.WriteEndArray();
                writer.WriteEndObject();
                break;
        }

        writer.WriteEndObject();
    }

    private static void WriteTensors(Utf8JsonWriter writer, string field, IReadOnlyList<TensorConfig> tensors, bool isInput)
    {
        writer.WriteStartArray(field);
        foreach (var tensor in tensors)
        {
            writer.WriteStartObject();
            writer.WriteString("name", tensor.Name);
            writer.WriteString("data_type", Tensors.TensorDataTypes.ToConfigName(tensor.DataType));
            if (isInput)
            {
                writer.WriteString("format", "FORMAT_NONE");
            }

            writer.WriteStartArray("dims");
            foreach (var dim in tensor.Dims)
            {
                writer.WriteNumberValue(dim);
            }

            writer.WriteEndArray();
            if (isInput)
            {
                writer.WriteBoolean("is_shape_tensor", false);
                writer.WriteBoolean("allow_ragged_batch", false);
                writer.WriteBoolean("optional", tensor.Optional);
            }
            else
            {
                writer.WriteString("label_filename", "");
                writer.WriteBoolean("is_shape_tensor", false);
            }

            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    }

    private static void WriteDynamicBatching(Utf8JsonWriter writer, DynamicBatchingConfig batching)
    {
        writer.WriteStartObject("dynamic_batching");
        writer.WriteStartArray("preferred_batch_size");
        foreach (var size in batching.PreferredBatchSize)
        {
            writer.WriteNumberValue(size);
        }

        writer.WriteEndArray();
        writer.WriteNumber("max_queue_delay_microseconds", batching.MaxQueueDelayMicroseconds);
        writer.WriteBoolean("preserve_ordering", batching.PreserveOrdering);
        writer.WriteNumber("priority_levels", batching.PriorityLevels);
        writer.WriteNumber("default_priority_level", batching.DefaultPriorityLevel);
        if (batching.DefaultQueuePolicy is { } policy)
        {
            writer.WritePropertyName("default_queue_policy");
            WriteQueuePolicy(writer, policy);
        }

        writer.WriteStartObject("priority_queue_policy");
        foreach (var (level, levelPolicy) in batching.PriorityQueuePolicy)
        {
            writer.WritePropertyName(level.ToString(System.Globalization.CultureInfo.InvariantCulture));
            WriteQueuePolicy(writer, levelPolicy);
        }

        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    private static void WriteQueuePolicy(Utf8JsonWriter writer, QueuePolicyConfig policy)
    {
        writer.WriteStartObject();
        writer.WriteString("timeout_action", policy.TimeoutAction);
        writer.WriteNumber("default_timeout_microseconds", policy.DefaultTimeoutMicroseconds);
        writer.WriteBoolean("allow_timeout_override", policy.AllowTimeoutOverride);
        writer.WriteNumber("max_queue_size", policy.MaxQueueSize);
        writer.WriteEndObject();
    }
}
