using System.Text;
using System.Text.Json;

namespace MedServe.Alerts;

/// <summary>
/// Evaluates every alert rule once per interval (one loop per server today; the scale-out issue
/// elects a leader): samples the serving counters, computes each rule's figure over its window,
/// and on a change of state (after the hold-off) records the event, logs it, and queues it for
/// the rule's webhooks. A figure with fewer samples than the rule's minimum changes nothing.
/// </summary>
public sealed partial class AlertEvaluator(IAlertStore store, MonitoredFigures figures, WebhookSender webhooks, TimeProvider time,
    Microsoft.Extensions.Options.IOptions<AlertOptions> options, ILogger<AlertEvaluator> logger, MedServe.Storage.LeaderElection leaders) : BackgroundService
{
    /// <summary>This loop's name in the leader election.</summary>
    public const string Loop = "alerts";

    public const string Firing = "firing";
    public const string Ok = "ok";

    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>One evaluation at <paramref name="now"/>; returns the events it raised.</summary>
    public async Task<IReadOnlyList<AlertEvent>> EvaluateOnceAsync(DateTimeOffset now, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            figures.Sample(now);
            var states = await store.StatesAsync(cancellationToken).ConfigureAwait(false);
            var raised = new List<AlertEvent>();
            foreach (var json in await store.RulesAsync(cancellationToken).ConfigureAwait(false))
            {
                AlertRule rule;
                try
                {
                    using var document = JsonDocument.Parse(json);
                    rule = AlertRule.Parse(document.RootElement, webhooks.Names);
                }
                catch (AlertRuleException e)
                {
                    LogRuleUnreadable(logger, e.Message);
                    continue;
                }

                var (value, samples) = await figures.FigureAsync(rule, now, cancellationToken).ConfigureAwait(false);
                var current = states.TryGetValue(rule.Name, out var s) ? s : new AlertState(rule.Name, Ok, DateTimeOffset.MinValue, null, 0);
                var judged = value is { } v && double.IsFinite(v) && samples >= rule.MinSamples;
                var next = !judged ? current.State : rule.Breached(value!.Value) ? Firing : Ok;
                var held = current.Since != DateTimeOffset.MinValue && now - current.Since < rule.HoldOff;
                if (next != current.State && !held)
                {
                    var e = await store.AppendEventAsync(new AlertEvent(0, rule.Name, rule.Model, rule.Metric, next == Firing ? Firing : "resolved", value, rule.Threshold, rule.Comparison, samples, now),
                        options.Value.EventsKept, cancellationToken).ConfigureAwait(false);
                    raised.Add(e);
                    if (next == Firing)
                    {
                        LogFiring(logger, rule.Name, rule.Model, rule.Metric, value!.Value, rule.Comparison, rule.Threshold);
                    }
                    else
                    {
                        LogResolved(logger, rule.Name, rule.Model, rule.Metric, value!.Value);
                    }

                    webhooks.Enqueue(rule.Webhooks, Encoding.UTF8.GetBytes(Http.V2.ApiResponses.ObjectJson(e.Write)));
                    await store.SetStateAsync(new AlertState(rule.Name, next, now, value, samples), cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    // Since stays the last change (never one: MinValue), so the hold-off runs from a change only.
                    await store.SetStateAsync(current with { LastValue = value, LastSamples = samples }, cancellationToken).ConfigureAwait(false);
                }
            }

            return raised;
        }
        finally
        {
            _gate.Release();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.Value.Enabled)
        {
            return;
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
                await Task.Delay(options.Value.Interval, time, stoppingToken).ConfigureAwait(false);
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

    [LoggerMessage(EventId = 500, Level = LogLevel.Warning, Message = "Alert {Rule} firing: {Model} {Metric} is {Figure} ({Comparison} {Threshold})")]
    private static partial void LogFiring(ILogger logger, string rule, string model, string metric, double figure, string comparison, double threshold);

    [LoggerMessage(EventId = 501, Level = LogLevel.Information, Message = "Alert {Rule} resolved: {Model} {Metric} is {Figure}")]
    private static partial void LogResolved(ILogger logger, string rule, string model, string metric, double figure);

    [LoggerMessage(EventId = 502, Level = LogLevel.Warning, Message = "An alert rule could not be read and is skipped: {Reason}")]
    private static partial void LogRuleUnreadable(ILogger logger, string reason);

    [LoggerMessage(EventId = 503, Level = LogLevel.Error, Message = "Alert evaluation failed ({Kind}: {Reason}); the next pass retries")]
    private static partial void LogFailed(ILogger logger, string kind, string reason);
}
