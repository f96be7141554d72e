using System.Collections.Concurrent;
using MedServe.Inference;
using MedServe.Repository;

namespace MedServe.Predictions;

/// <summary>Where an inference's data goes once the model has answered: the frontends hang one on the request, the core calls it with the version that answered.</summary>
public interface IPredictionSink
{
    void Capture(ModelConfig config, InferenceRequest request, InferenceResult result);
}

/// <summary>
/// Decides, per model, whether an inference's payload is kept and in what form: every
/// <c>1/sample_rate</c>-th inference (deterministic, so a rate of 0.25 keeps exactly one in four)
/// and inputs over the cap as a digest and summary.
/// </summary>
public sealed class PredictionCapture(long defaultMaxInputBytes = PredictionPayload.DefaultMaxInputBytes)
{
    private readonly ConcurrentDictionary<string, Counter> _counters = new(StringComparer.Ordinal);

    public long DefaultMaxInputBytes { get; } = defaultMaxInputBytes;

    /// <summary>The reserved subgroup names under which a routed inference's experiment and arm are kept.</summary>
    public const string ExperimentKey = "experiment";
    public const string ArmKey = "arm";

    /// <summary>The payload to journal for this inference, or null when sampling leaves it out.</summary>
    public byte[]? Payload(ModelConfig config, InferenceRequest request, InferenceResult result)
    {
        var policy = config.Journal;
        if (!Sampled(config.Name, policy.SampleRate))
        {
            return null;
        }

        var subgroups = Subgroups(config.Monitoring, request.Parameters);
        if (result.Experiment is not null)
        {
            // The experiment and arm travel as two reserved subgroups: the journal records both, and reports group by arm.
            (subgroups ??= []).Add(new(ExperimentKey, result.Experiment));
            subgroups.Add(new(ArmKey, result.Arm ?? ""));
        }

        return PredictionPayload.Encode(request.Inputs, result.Outputs, policy.MaxInputBytes ?? DefaultMaxInputBytes, subgroups);
    }

    /// <summary>
    /// The request parameters the model's monitoring spec declares as subgroups, as text (a string,
    /// integer or boolean of at most 64 characters); any other parameter is not kept.
    /// </summary>
    public static List<KeyValuePair<string, string>>? Subgroups(MonitoringSpec spec, IReadOnlyDictionary<string, InferenceParameter>? parameters)
    {
        if (spec.Subgroups.Count == 0 || parameters is null)
        {
            return null;
        }

        List<KeyValuePair<string, string>>? kept = null;
        foreach (var name in spec.Subgroups)
        {
            if (parameters.TryGetValue(name, out var value) && value.Kind is ParameterKind.String or ParameterKind.Integer or ParameterKind.Bool
                && value.ToString() is { Length: > 0 and <= 64 } text)
            {
                (kept ??= []).Add(new(name, text));
            }
        }

        return kept;
    }

    private bool Sampled(string model, double rate)
    {
        if (rate >= 1)
        {
            return true;
        }

        if (rate <= 0)
        {
            return false;
        }

        // The n-th inference is kept when floor(n * rate) steps: exactly rate of them, evenly spread.
        var n = Interlocked.Increment(ref _counters.GetOrAdd(model, _ => new Counter()).Value);
        return Math.Floor(n * rate) != Math.Floor((n - 1) * rate);
    }

    private sealed class Counter
    {
        public long Value;
    }
}
