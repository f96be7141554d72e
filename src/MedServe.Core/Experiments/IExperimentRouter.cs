using MedServe.Inference;

namespace MedServe.Experiments;

/// <summary>Where an unversioned inference goes under a running experiment: the arm, its version, and the shadows that get a copy.</summary>
public sealed record ExperimentRoute(string Experiment, string Arm, long Version, IReadOnlyList<ShadowArm> Shadows);

public sealed record ShadowArm(string Arm, long Version);

/// <summary>
/// The experiment layer, as the core sees it: asked for a route for every inference that names
/// no version (one naming a version bypasses experiments), told how each routed one ended. Its
/// calls must never fail a request: the core ignores what they throw.
/// </summary>
public interface IExperimentRouter
{
    ExperimentRoute? Route(string model, InferenceRequest request);

    void Completed(string model, ExperimentRoute route, InferenceRequest request, InferenceResult result, TimeSpan latency);

    void Failed(string model, ExperimentRoute route, InferenceException error, TimeSpan latency);
}
