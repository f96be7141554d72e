using MedServe.Inference;
using MedServe.Repository;

namespace MedServe.Scheduling;

/// <summary>A request's priority level and queue timeout, from its parameters and the model's queue policies.</summary>
internal readonly record struct RequestPolicy(int Level, long TimeoutMicroseconds, bool RejectOnTimeout, int MaxQueueSize)
{
    /// <summary>Resolves Triton's rules: parameter <c>priority</c> (1 is highest, 0 the default level), parameter <c>timeout</c> (µs) when overrides are allowed.</summary>
    public static RequestPolicy For(InferenceRequest request, DynamicBatchingConfig batching)
    {
        var levels = (int)Math.Max(batching.PriorityLevels, 1);
        var defaultLevel = (int)Math.Clamp(batching.DefaultPriorityLevel == 0 ? levels : batching.DefaultPriorityLevel, 1, levels);
        var level = defaultLevel;
        if (request.Parameters is { } parameters && parameters.TryGetValue("priority", out var priority))
        {
            if (!priority.TryGetInt64(out var value) || value < 0)
            {
                throw InferenceException.Invalid("parameter 'priority' must be a non-negative integer");
            }

            if (value > levels && batching.PriorityLevels > 0)
            {
                throw InferenceException.Invalid($"parameter 'priority' is {value}, but the model has {levels} priority levels");
            }

            level = value == 0 || batching.PriorityLevels == 0 ? defaultLevel : (int)value;
        }

        var policy = batching.PriorityQueuePolicy.TryGetValue(level, out var specific) ? specific : batching.DefaultQueuePolicy ?? new QueuePolicyConfig();
        var timeout = policy.DefaultTimeoutMicroseconds;
        if (request.Parameters is { } p && p.TryGetValue("timeout", out var requested))
        {
            if (!requested.TryGetInt64(out var micros) || micros < 0)
            {
                throw InferenceException.Invalid("parameter 'timeout' must be a non-negative integer of microseconds");
            }

            if (policy.AllowTimeoutOverride)
            {
                // Triton lets a request shorten its timeout, never lengthen it past the policy's.
                timeout = timeout == 0 ? micros : Math.Min(timeout, micros);
            }
        }

        return new RequestPolicy(level - 1, timeout, policy.TimeoutAction != "DELAY", policy.MaxQueueSize);
    }
}
