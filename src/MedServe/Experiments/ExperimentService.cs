using System.Collections.Concurrent;
using MedServe.Lifecycle;
using MedServe.Registry.Serving;
using MedServe.Registry.Store;

namespace MedServe.Experiments;

/// <summary>
/// Experiments' lifecycle: create (at most one active per model), pause, resume, stop, promote
/// (the winner becomes the serving version: the registry's serving alias for a registry model),
/// the controller's step and rollback. Every change is saved with its history, then the router's
/// table is rebuilt and swapped whole, so no request is lost or half-routed on a change.
/// </summary>
public sealed partial class ExperimentService(IExperimentStore store, ExperimentRouter router, ModelManager models, IRegistryStore registry, ServingReconciler reconciler,
    TimeProvider time, ILogger<ExperimentService> logger)
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, ArmStatistics>> _statistics = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, ShadowStatistics>> _shadowStatistics = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _stepBaselines = new(StringComparer.Ordinal);
    private IReadOnlyList<StoredExperiment> _all = [];

    public IReadOnlyList<StoredExperiment> All => Volatile.Read(ref _all);

    public async Task LoadAsync(CancellationToken cancellationToken = default)
    {
        Wire();
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await PublishAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The router sits in the model manager's path from the first experiment on.</summary>
    private void Wire()
    {
        router.Models ??= models;
        models.Router ??= router;
    }

    public async Task<StoredExperiment> CreateAsync(ExperimentSpec spec, string by, CancellationToken cancellationToken)
    {
        Wire();
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var all = await store.ListAsync(cancellationToken).ConfigureAwait(false);
            if (all.Any(e => e.Spec.Name == spec.Name))
            {
                throw new ExperimentException($"an experiment named '{spec.Name}' exists (names are never reused: its history stays)", StatusCodes.Status409Conflict);
            }

            if (all.FirstOrDefault(e => e.Spec.Model == spec.Model && e.State.Active) is { } running)
            {
                throw new ExperimentException($"model '{spec.Model}' already has an active experiment, '{running.Spec.Name}': stop or promote it first", StatusCodes.Status409Conflict);
            }

            // Aliases resolve now, and every arm's version must be loaded and ready.
            await ResolveAsync(spec, cancellationToken).ConfigureAwait(false);
            var now = time.GetUtcNow();
            var stored = new StoredExperiment(spec, new ExperimentState(ExperimentState.Running, 0, now, "created", now, by));
            await store.SaveAsync(stored, "created", $"by {by}", now, cancellationToken).ConfigureAwait(false);
            await PublishAsync(cancellationToken).ConfigureAwait(false);
            LogChanged(logger, spec.Name, spec.Model, ExperimentState.Running, "created");
            return stored;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>pause, resume, stop or promote (the winner: the named arm, else the rollout's candidate, else the last arm).</summary>
    public async Task<StoredExperiment> ActAsync(string name, string action, string? arm, string by, string reason, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var current = (await store.ListAsync(cancellationToken).ConfigureAwait(false)).FirstOrDefault(e => e.Spec.Name == name)
                ?? throw new ExperimentException($"no experiment is named '{name}'", StatusCodes.Status404NotFound);
            var state = current.State;
            var now = time.GetUtcNow();
            ExperimentState next = action switch
            {
                "pause" when state.Status is ExperimentState.Running or ExperimentState.Completed => state with { Status = ExperimentState.Paused, Reason = reason },
                "resume" when state.Status == ExperimentState.Paused => state with
                {
                    Status = current.Spec.Rollout is { } r && state.Step == r.Steps.Count - 1 ? ExperimentState.Completed : ExperimentState.Running,
                    StepStartedAt = now,
                    Reason = reason,
                },
                "stop" when state.Active => state with { Status = ExperimentState.Stopped, Reason = reason },
                "promote" when state.Active => state with { Status = ExperimentState.Promoted, Reason = reason },
                "pause" or "resume" or "stop" or "promote" => throw new ExperimentException($"experiment '{name}' is {state.Status}: it cannot {action}", StatusCodes.Status409Conflict),
                _ => throw new ExperimentException($"'{action}' is not an action (pause, resume, stop, promote)", StatusCodes.Status404NotFound),
            };

            var detail = $"by {by}" + (reason.Length > 0 ? $": {reason}" : "");
            if (action == "promote")
            {
                var winner = arm is not null
                    ? current.Spec.Arms.FirstOrDefault(a => a.Name == arm) ?? throw new ExperimentException($"experiment '{name}' has no arm '{arm}'")
                    : current.Spec.Arms[^1];
                var version = await VersionOfAsync(current.Spec.Model, winner, cancellationToken).ConfigureAwait(false);
                if (models.IsManaged(current.Spec.Model))
                {
                    await registry.SetAliasAsync(current.Spec.Model, reconciler.ServingAlias, version, by, $"promoted from experiment {name}", cancellationToken).ConfigureAwait(false);
                    await reconciler.ReconcileAsync(current.Spec.Model, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await models.SetServingVersionAsync(current.Spec.Model, version, cancellationToken).ConfigureAwait(false);
                }

                detail += $"; arm {winner.Name} (version {version}) serves";
            }

            await store.SaveAsync(current with { State = next }, action, detail, now, cancellationToken).ConfigureAwait(false);
            await PublishAsync(cancellationToken).ConfigureAwait(false);
            LogChanged(logger, name, current.Spec.Model, next.Status, action);
            return current with { State = next };
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The controller's step: to the next share, or completed at the last; the candidate's sample count restarts.</summary>
    public Task AdvanceAsync(string name, CancellationToken cancellationToken) => ChangeAsync(name, (e, now) =>
    {
        var last = e.Spec.Rollout!.Steps.Count - 1;
        var step = Math.Min(e.State.Step + 1, last);
        return (e.State with { Step = step, StepStartedAt = now, Status = step == last ? ExperimentState.Completed : ExperimentState.Running, Reason = step == last ? "completed" : $"step {e.Spec.Rollout.Steps[step]}%" },
            "advanced", $"the candidate takes {e.Spec.Rollout.Steps[step]}%");
    }, cancellationToken);

    /// <summary>All traffic back to the control arm at once; the experiment stays rolled_back with the reason.</summary>
    public Task RollBackAsync(string name, string reason, CancellationToken cancellationToken) => ChangeAsync(name, (e, now) =>
        (e.State with { Status = ExperimentState.RolledBack, StepStartedAt = now, Reason = reason }, "rolled_back", reason), cancellationToken);

    public (ConcurrentDictionary<string, ArmStatistics> Arms, ConcurrentDictionary<string, ShadowStatistics> Shadows, long StepBaseline) StatisticsOf(string name) =>
        (_statistics.GetOrAdd(name, _ => new()), _shadowStatistics.GetOrAdd(name, _ => new()), _stepBaselines.GetValueOrDefault(name));

    public Task<IReadOnlyList<ExperimentEvent>> HistoryAsync(string name, CancellationToken cancellationToken) => store.HistoryAsync(name, cancellationToken);

    private async Task ChangeAsync(string name, Func<StoredExperiment, DateTimeOffset, (ExperimentState State, string Event, string Detail)> change, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var current = (await store.ListAsync(cancellationToken).ConfigureAwait(false)).First(e => e.Spec.Name == name);
            var (next, @event, detail) = change(current, time.GetUtcNow());
            await store.SaveAsync(current with { State = next }, @event, detail, time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
            if (current.Spec.Rollout is not null && current.Spec.Arms.Count == 2)
            {
                _stepBaselines[name] = _statistics.GetOrAdd(name, _ => new()).GetValueOrDefault(current.Spec.Arms[1].Name)?.Requests ?? 0;
            }

            await PublishAsync(cancellationToken).ConfigureAwait(false);
            LogChanged(logger, name, current.Spec.Model, next.Status, detail);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Rebuilds the router's table from the store: each routing experiment with its arms' versions and current shares.</summary>
    private async Task PublishAsync(CancellationToken cancellationToken)
    {
        var all = await store.ListAsync(cancellationToken).ConfigureAwait(false);
        Volatile.Write(ref _all, all);
        var live = new List<LiveExperiment>();
        foreach (var e in all.Where(e => e.State.Active))
        {
            var arms = new List<LiveArm>();
            for (var i = 0; i < e.Spec.Arms.Count; i++)
            {
                var arm = e.Spec.Arms[i];
                arms.Add(new LiveArm(arm.Name, await VersionOfAsync(e.Spec.Model, arm, cancellationToken).ConfigureAwait(false), Weight(e, i)));
            }

            var shadows = new List<Experiments.ShadowArm>();
            foreach (var shadow in e.Spec.Shadows)
            {
                shadows.Add(new Experiments.ShadowArm(shadow.Name, await VersionOfAsync(e.Spec.Model, shadow, cancellationToken).ConfigureAwait(false)));
            }

            live.Add(new LiveExperiment(e, arms, shadows, _statistics.GetOrAdd(e.Spec.Name, _ => new()), _shadowStatistics.GetOrAdd(e.Spec.Name, _ => new())));
        }

        router.Publish(live);
    }

    /// <summary>An arm's share now: a rollout's step (the control the rest; all of it once rolled back), else its weight.</summary>
    private static double Weight(StoredExperiment e, int arm)
    {
        if (e.Spec.Rollout is not { } rollout)
        {
            return e.Spec.Arms[arm].Weight;
        }

        var candidate = e.State.Status == ExperimentState.RolledBack ? 0 : rollout.Steps[Math.Clamp(e.State.Step, 0, rollout.Steps.Count - 1)];
        return arm == 1 ? candidate : 100 - candidate;
    }

    private async Task ResolveAsync(ExperimentSpec spec, CancellationToken cancellationToken)
    {
        foreach (var arm in spec.Arms.Concat(spec.Shadows))
        {
            var version = await VersionOfAsync(spec.Model, arm, cancellationToken).ConfigureAwait(false);
            bool ready;
            try
            {
                ready = models.Find(spec.Model, version.ToString(System.Globalization.CultureInfo.InvariantCulture)).IsReady;
            }
            catch (Inference.InferenceException)
            {
                ready = false;
            }

            if (!ready)
            {
                throw new ExperimentException($"arm '{arm.Name}': model '{spec.Model}' version {version} is not loaded and ready (its version policy, or a registry alias, loads it)");
            }
        }
    }

    private async Task<long> VersionOfAsync(string model, Arm arm, CancellationToken cancellationToken)
    {
        if (arm.Version is { } version)
        {
            return version;
        }

        var aliases = await registry.GetAliasesAsync(model, cancellationToken).ConfigureAwait(false);
        return aliases.TryGetValue(arm.Alias!, out var aliased) ? aliased
            : throw new ExperimentException($"arm '{arm.Name}': model '{model}' has no alias '{arm.Alias}'");
    }

    [LoggerMessage(EventId = 610, Level = LogLevel.Information, Message = "Experiment {Experiment} on {Model} is {Status}: {Detail}")]
    private static partial void LogChanged(ILogger logger, string experiment, string model, string status, string detail);
}
