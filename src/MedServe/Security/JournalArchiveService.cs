using MedServe.Compliance.Journal;
using Microsoft.Extensions.Options;

namespace MedServe.Security;

/// <summary>
/// Every hour, moves the journal's finished segments older than Journal:ArchiveAfter to
/// Journal:ArchiveFolder (<see cref="InferenceJournal.ArchiveAsync"/>): retention by age, with the
/// chain recording what went where.
/// </summary>
public sealed partial class JournalArchiveService(AuditTrail trail, IOptions<Hosting.ServerOptions> options, TimeProvider time, ILogger<JournalArchiveService> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromHours(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value.Journal;
        if (!trail.Enabled || settings.ArchiveAfter is not { } age || string.IsNullOrWhiteSpace(settings.ArchiveFolder))
        {
            return;
        }

        using var timer = new PeriodicTimer(Interval, time);
        do
        {
            try
            {
                if (trail.Journal.Writer is { } writer)
                {
                    var moved = await writer.ArchiveAsync(time.GetUtcNow() - age, Path.GetFullPath(settings.ArchiveFolder)).ConfigureAwait(false);
                    if (moved > 0)
                    {
                        LogArchived(logger, moved);
                    }
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or JournalUnavailableException or JournalFullException)
            {
                LogFailed(logger, e.GetType().Name, MedServe.Files.ServerPaths.Scrub(e.Message));
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    [LoggerMessage(EventId = 30, Level = LogLevel.Information, Message = "Moved {Segments} journal segments to the archive folder")]
    private static partial void LogArchived(ILogger logger, int segments);

    [LoggerMessage(EventId = 31, Level = LogLevel.Error, Message = "Archiving journal segments failed ({Kind}: {Reason}); the next hour retries")]
    private static partial void LogFailed(ILogger logger, string kind, string reason);
}
