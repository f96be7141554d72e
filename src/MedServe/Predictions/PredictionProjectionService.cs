using MedServe.Compliance.Journal;
using MedServe.Compliance.Predictions;
using MedServe.Security;

namespace MedServe.Predictions;

/// <summary>
/// Builds the prediction store from the journal, behind the writer: every few hundred
/// milliseconds it applies the inference records made durable since its watermark. A store that
/// is lost (deleted, or from another journal: its watermark is past the journal's head) is rebuilt
/// from the journal's first record.
/// </summary>
public sealed partial class PredictionProjectionService(AuditTrail trail, IPredictionStore store, MedServe.Compliance.Encryption.EnvelopeEncryption envelopes, TimeProvider time, ILogger<PredictionProjectionService> logger) : BackgroundService
{
    private const int PageSize = 2048;
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(250);
    private readonly SemaphoreSlim _gate = new(1, 1);
    private JournalTailReader? _reader;

    /// <summary>Applies everything durable now; completes when the store has caught up with it (tests, and reads that must see the latest).</summary>
    public async Task CatchUpAsync(CancellationToken cancellationToken = default)
    {
        if (!trail.Enabled || trail.Journal.Writer is not { } writer)
        {
            return;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var durable = writer.DurableSequence;
            if (_reader is null)
            {
                var through = await store.ProjectedThroughAsync(cancellationToken).ConfigureAwait(false);
                if (through > durable)
                {
                    LogRebuilding(logger, through, durable);
                    await store.ResetAsync(cancellationToken).ConfigureAwait(false);
                    through = 0;
                }

                _reader = new JournalTailReader(trail.Journal.Folder, through + 1, trail.Journal.Archives);
            }

            while (_reader.NextSequence <= durable)
            {
                var page = _reader.Read(PageSize, durable);
                if (page.Count == 0)
                {
                    break;
                }

                await store.ApplyAsync(page, Outcomes(page), page[^1].Sequence, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The outcome records of a page: the prediction each belongs to is inside its envelope (bound to that prediction's request id).</summary>
    private List<(long, long, byte[], DateTimeOffset)> Outcomes(IReadOnlyList<JournalRecord> page)
    {
        var outcomes = new List<(long, long, byte[], DateTimeOffset)>();
        foreach (var record in page)
        {
            if (record.Entry.Kind != JournalKind.Outcome)
            {
                continue;
            }

            var envelope = record.Entry.Payload.ToArray();
            var outcome = MedServe.Outcomes.OutcomeRecord.Read(envelopes, envelope, record.Entry.ClientRequestId);
            outcomes.Add((record.Sequence, outcome.PredictionSequence, envelope, record.Entry.Time));
        }

        return outcomes;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!trail.Enabled)
        {
            return;
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await CatchUpAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The journal keeps every record: the next pass starts again from the watermark.
                _reader = null;
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

    [LoggerMessage(EventId = 40, Level = LogLevel.Warning, Message = "The prediction store is at record {Through} but the journal ends at {Durable}: it belongs to another journal, so it is rebuilt from this one")]
    private static partial void LogRebuilding(ILogger logger, long through, long durable);

    [LoggerMessage(EventId = 41, Level = LogLevel.Error, Message = "The prediction store could not be updated ({Kind}: {Reason}); the next pass retries from its watermark")]
    private static partial void LogFailed(ILogger logger, string kind, string reason);
}
