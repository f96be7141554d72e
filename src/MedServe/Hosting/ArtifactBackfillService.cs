using MedServe.Registry.Artifacts;

namespace MedServe.Hosting;

/// <summary>
/// Once at start, with an object store configured: uploads what only this replica's artifact
/// cache holds (versions registered before the store was switched on), so the other replicas can
/// serve them. Every replica runs it; uploads are idempotent (content-addressed, If-None-Match).
/// </summary>
public sealed partial class ArtifactBackfillService(ArtifactStore artifacts, ILogger<ArtifactBackfillService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (artifacts.ObjectStore is null)
        {
            return;
        }

        try
        {
            var (uploaded, corrupt) = await artifacts.UploadMissingAsync(stoppingToken).ConfigureAwait(false);
            if (uploaded + corrupt > 0)
            {
                LogBackfilled(logger, uploaded, corrupt);
            }
        }
        catch (ArtifactObjectStoreException e)
        {
            LogFailed(logger, e.Message);
        }
        catch (OperationCanceledException)
        {
        }
    }

    [LoggerMessage(EventId = 406, Level = LogLevel.Information, Message = "Uploaded {Uploaded} artifacts that only this replica's cache held to the object store ({Corrupt} corrupt ones left out)")]
    private static partial void LogBackfilled(ILogger logger, int uploaded, int corrupt);

    [LoggerMessage(EventId = 407, Level = LogLevel.Warning, Message = "Uploading this replica's cached artifacts to the object store failed ({Error}); the next start tries again")]
    private static partial void LogFailed(ILogger logger, string error);
}
