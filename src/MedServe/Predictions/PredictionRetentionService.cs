using MedServe.Compliance.Predictions;
using MedServe.Storage;
using Microsoft.Extensions.Options;

namespace MedServe.Predictions;

/// <summary>
/// <c>MedServe:Predictions</c>. <c>RetainFor</c> bounds how long the queryable prediction log keeps
/// a prediction and its outcome (HIPAA's minimum necessary: monitoring needs months, not forever);
/// unset keeps everything. The journal is not touched: it keeps every record until it is archived
/// (<c>Journal:ArchiveAfter</c>).
/// </summary>
public sealed class PredictionsOptions
{
    public TimeSpan? RetainFor { get; set; }

    /// <summary>How often the leader of the retention loop prunes.</summary>
    public TimeSpan RetentionInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>A refusal naming the setting; null when usable.</summary>
    public string? Problem() =>
        RetainFor is { } keep && keep <= TimeSpan.Zero ? "Predictions:RetainFor must be positive (or unset to keep every prediction)"
        : RetentionInterval <= TimeSpan.Zero ? "Predictions:RetentionInterval must be positive"
        : null;
}

/// <summary>
/// Prunes the prediction log past <see cref="PredictionsOptions.RetainFor"/>. The log is shared
/// when replicas share a PostgreSQL, so one replica (the leader of <see cref="Loop"/>) prunes for
/// all; a rebuilt projection brings old rows back from the journal, and the next pass removes
/// them again.
/// </summary>
public sealed partial class PredictionRetentionService(IPredictionStore store, LeaderElection leaders, IOptions<Hosting.ServerOptions> options, TimeProvider time,
    ILogger<PredictionRetentionService> logger) : BackgroundService
{
    public const string Loop = "retention";

    /// <summary>One pass, if this replica leads the loop: what was pruned (0 when another replica leads).</summary>
    public async Task<long> PruneOnceAsync(CancellationToken cancellationToken = default)
    {
        if (options.Value.Predictions.RetainFor is not { } keep || !leaders.Leads(Loop))
        {
            return 0;
        }

        var pruned = await store.PruneAsync(time.GetUtcNow() - keep, cancellationToken).ConfigureAwait(false);
        if (pruned > 0)
        {
            LogPruned(logger, pruned, keep.TotalDays);
        }

        return pruned;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.Value.Predictions.RetainFor is null)
        {
            return;
        }

        using var timer = new PeriodicTimer(options.Value.Predictions.RetentionInterval, time);
        try
        {
            do
            {
                try
                {
                    await PruneOnceAsync(stoppingToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    LogFailed(logger, e.GetType().Name, MedServe.Files.ServerPaths.Scrub(e.Message));
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(EventId = 37, Level = LogLevel.Information, Message = "Pruned {Count} predictions older than {Days} days from the prediction log (the journal keeps them)")]
    private static partial void LogPruned(ILogger logger, long count, double days);

    [LoggerMessage(EventId = 38, Level = LogLevel.Error, Message = "Pruning the prediction log failed ({Kind}: {Reason}); the next pass retries")]
    private static partial void LogFailed(ILogger logger, string kind, string reason);
}
