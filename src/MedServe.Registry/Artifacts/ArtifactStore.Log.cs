using Microsoft.Extensions.Logging;

namespace MedServe.Registry.Artifacts;

public sealed partial class ArtifactStore
{
    [LoggerMessage(EventId = 402, Level = LogLevel.Warning, Message = "Artifact sha256:{Digest} in the local cache is corrupt (its bytes hash to {Actual}); fetching it again from the object store {Store}")]
    private static partial void LogCorruptCopy(ILogger logger, string digest, string actual, string store);

    [LoggerMessage(EventId = 403, Level = LogLevel.Information, Message = "Artifact sha256:{Digest} fetched from the object store {Store} and verified: {Bytes} bytes in {Milliseconds:F0} ms")]
    private static partial void LogFetched(ILogger logger, string digest, long bytes, double milliseconds, string store);

    [LoggerMessage(EventId = 404, Level = LogLevel.Information, Message = "Artifact sha256:{Digest} uploaded to the object store {Store}: {Bytes} bytes in {Milliseconds:F0} ms")]
    private static partial void LogUploaded(ILogger logger, string digest, long bytes, double milliseconds, string store);

    [LoggerMessage(EventId = 405, Level = LogLevel.Error, Message = "Artifact sha256:{Digest} in the local cache is corrupt (its bytes hash to {Actual}) and absent from the object store: not uploaded; restore it from a backup")]
    private static partial void LogCorruptNotUploaded(ILogger logger, string digest, string actual);
}
