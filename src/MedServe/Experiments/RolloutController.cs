using System.Text;
using MedServe.Alerts;
using MedServe.Security;

namespace MedServe.Experiments;

/// <summary>
/// Advances each running rollout while its guardrails hold, and rolls it back the moment one
/// breaks: at least once a second (one loop per server today; the scale-out issue elects a
/// leader). A step advances after its minimum duration and minimum samples on the candidate. A
/// breach sends all traffic to the control arm at once, records why (journal, alert event,
/// webhooks, log) and leaves the experiment rolled_back.
/// </summary>
public sealed partial class RolloutController(ExperimentService experiments, ExperimentRouter router, ExperimentReport report, IAlertStore alerts, WebhookSender webhooks, AuditTrail trail,
    TimeProvider time, ILogger<RolloutController> logger, MedServe.Storage.LeaderElection leaders) : BackgroundService
{
    /// <summary>This loop's name in the leader election.</summary>
    public const string Loop = "rollout";

    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    /// <summary>How often the outcome guardrails (which read the journal's predictions) are checked.</summary>
    public static readonly TimeSpan OutcomeInterval = TimeSpan.FromSeconds(10);

    private readonly Dictionary<string, DateTimeOffset> _outcomesChecked = new(StringComparer.Ordinal);

    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>One pass at <paramref name="now"/> (tests call it at the times they choose).</summary>
    public async Task EvaluateOnceAsync(DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            foreach (var live in router.Snapshot.Values)
            {
                var (spec, state) = (live.Stored.Spec, live.Stored.State);
                if (spec.Rollout is not { } rollout || state.Status != ExperimentState.Running || live.Arms.Count != 2)
                {
                    continue;
                }

                var breach = Breach(live);
                if (breach is null && now - _outcomesChecked.GetValueOrDefault(spec.Name, DateTimeOffset.MinValue) >= OutcomeInterval)
                {
                    _outcomesChecked[spec.Name] = now;
                    breach = await OutcomeBreachAsync(spec, cancellationToken).ConfigureAwait(false);
                }

                if (breach is { } reason)
                {
                    await experiments.RollBackAsync(spec.Name, reason, cancellationToken).ConfigureAwait(false);
                    await RecordAsync(spec, reason, now, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                var candidate = live.Statistics.GetValueOrDefault(live.Arms[1].Name);
                var samples = (candidate?.Requests ?? 0) - experiments.StatisticsOf(spec.Name).StepBaseline;
                if (now - state.StepStartedAt >= rollout.MinDuration && samples >= rollout.MinSamples)
                {
                    await experiments.AdvanceAsync(spec.Name, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The first guardrail the candidate breaks, in words, or null.</summary>
    public static string? Breach(LiveExperiment live)
    {
        var guard = live.Stored.Spec.Guardrails;
        var control = live.Statistics.GetValueOrDefault(live.Arms[0].Name);
        var candidate = live.Statistics.GetValueOrDefault(live.Arms[1].Name);
        if (candidate is null)
        {
            return null;
        }

        if (candidate.InvalidOutputs > guard.MaxInvalidOutputs)
        {
            return $"guardrail: {candidate.InvalidOutputs} invalid outputs (NaN, infinite or out of range) from arm {live.Arms[1].Name}; at most {guard.MaxInvalidOutputs} allowed";
        }

        if (candidate.Requests >= guard.MinSamples && (double)candidate.Failures / candidate.Requests > guard.MaxErrorRate)
        {
            return $"guardrail: arm {live.Arms[1].Name} error rate {(double)candidate.Failures / candidate.Requests:P2} above {guard.MaxErrorRate:P2}";
        }

        if (candidate.Requests >= guard.MinSamples && control is { Requests: var n } && n >= guard.MinSamples
            && candidate.Percentile(0.99) is { } p99 && control.Percentile(0.99) is { } controlP99 && p99 > guard.MaxP99Ratio * controlP99)
        {
            return $"guardrail: arm {live.Arms[1].Name} p99 latency {p99:0.0} ms above {guard.MaxP99Ratio} times the control's {controlP99:0.0} ms";
        }

        if (guard.MinShadowAgreement is { } agreement)
        {
            foreach (var (arm, shadow) in live.ShadowStatistics)
            {
                if (shadow.Compared >= guard.MinSamples && shadow.Agreement < agreement)
                {
                    return $"guardrail: shadow {arm} agrees with the primary on {shadow.Agreement:P1} of cases, below {agreement:P1}";
                }
            }
        }

        return null;
    }

    /// <summary>AUROC and Brier non-inferiority from the experiment's report, where both arms have outcomes.</summary>
    private async Task<string?> OutcomeBreachAsync(ExperimentSpec spec, CancellationToken cancellationToken)
    {
        using var document = Http.V2.ApiResponses.Render(await report.BuildAsync(spec.Name, cancellationToken).ConfigureAwait(false));
        var guard = spec.Guardrails;
        foreach (var c in document.RootElement.GetProperty("comparisons").EnumerateArray())
        {
            if (c.GetProperty("arm").GetString() != spec.Arms[1].Name || !c.TryGetProperty("always_valid_ci_low", out var low))
            {
                continue;
            }

            var high = c.GetProperty("always_valid_ci_high").GetDouble();
            switch (c.GetProperty("metric").GetString())
            {
                case "auroc" when high < -guard.AurocMargin:
                    return $"guardrail: AUROC non-inferiority failed: the candidate trails the control by {-c.GetProperty("difference").GetDouble():0.000} (always-valid 95% interval up to {high:0.000}, margin {guard.AurocMargin})";
                case "brier" when low.GetDouble() > guard.BrierMargin:
                    return $"guardrail: Brier non-inferiority failed: the candidate's is higher by {c.GetProperty("difference").GetDouble():0.000} (always-valid 95% interval from {low.GetDouble():0.000}, margin {guard.BrierMargin})";
            }
        }

        return null;
    }

    private async Task RecordAsync(ExperimentSpec spec, string reason, DateTimeOffset now, CancellationToken cancellationToken)
    {
        LogRolledBack(logger, spec.Name, spec.Model, reason);
        await trail.RecordSystemAsync("experiment rolled back", $"{spec.Model}/{spec.Name}", reason).ConfigureAwait(false);
        var e = await alerts.AppendEventAsync(new AlertEvent(0, $"experiment:{spec.Name}", spec.Model, "guardrail", "firing", null, 0, "above", 0, now), 1000, cancellationToken).ConfigureAwait(false);
        webhooks.Enqueue([], Encoding.UTF8.GetBytes(Http.V2.ApiResponses.ObjectJson(w =>
            {
                e.Write(w);
                w.WriteString("reason", reason);
            })));
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await experiments.LoadAsync(stoppingToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogFailed(logger, e.GetType().Name, MedServe.Files.ServerPaths.Scrub(e.Message));
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                // One replica runs this loop (the leader); the others stand by to take it over.
                if (leaders.Leads(Loop))
                {
                    await EvaluateOnceAsync(time.GetUtcNow(), stoppingToken).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogFailed(logger, e.GetType().Name, MedServe.Files.ServerPaths.Scrub(e.Message));
            }

            try
            {
                await Task.Delay(Interval, time, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    public override void Dispose()
    {
        _gate.Dispose();
        base.Dispose();
    }

    [LoggerMessage(EventId = 620, Level = LogLevel.Warning, Message = "Experiment {Experiment} on {Model} rolled back: {Reason}")]
    private static partial void LogRolledBack(ILogger logger, string experiment, string model, string reason);

    [LoggerMessage(EventId = 621, Level = LogLevel.Error, Message = "The rollout controller failed ({Kind}: {Reason}); the next pass retries")]
    private static partial void LogFailed(ILogger logger, string kind, string reason);
}
