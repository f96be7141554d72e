using MedServe.Grpc.Protocol;
using MedServe.Repository;
using MedServe.Tensors;

namespace MedServe.Grpc;

/// <summary>Maps the core's <see cref="ModelConfig"/> to Triton's ModelConfig message.</summary>
internal static class GrpcConfigMapper
{
    public static Protocol.ModelConfig ToMessage(Repository.ModelConfig config)
    {
        var message = new Protocol.ModelConfig
        {
            Name = config.Name,
            Platform = config.Platform,
            Backend = config.Backend,
            MaxBatchSize = config.MaxBatchSize,
            DefaultModelFilename = config.ModelFilename,
            VersionPolicy = config.VersionPolicy.Kind switch
            {
                VersionPolicyKind.All => new ModelVersionPolicy { All = new ModelVersionPolicy.Types.All() },
                VersionPolicyKind.Specific => new ModelVersionPolicy { Specific = new ModelVersionPolicy.Types.Specific { Versions = { config.VersionPolicy.Versions } } },
                _ => new ModelVersionPolicy { Latest = new ModelVersionPolicy.Types.Latest { NumVersions = (uint)config.VersionPolicy.NumVersions } },
            },
        };

        foreach (var input in config.Inputs)
        {
            message.Input.Add(new ModelInput { Name = input.Name, DataType = ToMessage(input.DataType), Dims = { input.Dims }, Optional = input.Optional });
        }

        foreach (var output in config.Outputs)
        {
            message.Output.Add(new ModelOutput { Name = output.Name, DataType = ToMessage(output.DataType), Dims = { output.Dims } });
        }

        foreach (var group in config.InstanceGroups)
        {
            message.InstanceGroup.Add(new ModelInstanceGroup
            {
                Name = group.Name,
                Count = group.Count,
                Kind = group.Kind switch
                {
                    InstanceKind.Cpu => ModelInstanceGroup.Types.Kind.Cpu,
                    InstanceKind.Gpu => ModelInstanceGroup.Types.Kind.Gpu,
                    InstanceKind.Model => ModelInstanceGroup.Types.Kind.Model,
                    _ => ModelInstanceGroup.Types.Kind.Auto,
                },
                Gpus = { group.Gpus },
            });
        }

        if (config.DynamicBatching is { } batching)
        {
            var dynamic = new ModelDynamicBatching
            {
                PreferredBatchSize = { batching.PreferredBatchSize },
                MaxQueueDelayMicroseconds = (ulong)batching.MaxQueueDelayMicroseconds,
                PreserveOrdering = batching.PreserveOrdering,
                PriorityLevels = (ulong)batching.PriorityLevels,
                DefaultPriorityLevel = (ulong)batching.DefaultPriorityLevel,
                DefaultQueuePolicy = batching.DefaultQueuePolicy is { } defaultPolicy ? ToMessage(defaultPolicy) : null,
            };
            foreach (var (level, policy) in batching.PriorityQueuePolicy)
            {
                dynamic.PriorityQueuePolicy[(ulong)level] = ToMessage(policy);
            }

            message.DynamicBatching = dynamic;
        }

        foreach (var (key, value) in config.Parameters)
        {
            message.Parameters[key] = new ModelParameter { StringValue = value };
        }

        return message;
    }

    private static ModelQueuePolicy ToMessage(QueuePolicyConfig policy) => new()
    {
        TimeoutAction = policy.TimeoutAction == "DELAY" ? ModelQueuePolicy.Types.TimeoutAction.Delay : ModelQueuePolicy.Types.TimeoutAction.Reject,
        DefaultTimeoutMicroseconds = (ulong)policy.DefaultTimeoutMicroseconds,
        AllowTimeoutOverride = policy.AllowTimeoutOverride,
        MaxQueueSize = (uint)policy.MaxQueueSize,
    };

    // The proto enum follows the same order as TensorDataType (TYPE_STRING is BYTES).
    private static DataType ToMessage(TensorDataType type) => (DataType)(int)type;
}
