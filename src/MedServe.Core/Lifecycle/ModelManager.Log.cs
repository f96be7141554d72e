using Microsoft.Extensions.Logging;

namespace MedServe.Lifecycle;

// Log lines name models and versions only, never request data.
public sealed partial class ModelManager
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "Loaded model {Model} versions {Versions} with {Instances} instance(s) each")]
    private partial void LogLoaded(string model, string versions, int instances);

    [LoggerMessage(EventId = 105, Level = LogLevel.Warning, Message = "Model {Model} was pinned to version {Version}, which is no longer loaded: unversioned requests now go to the highest ready version")]
    private partial void LogUnpinned(string model, long version);

    [LoggerMessage(EventId = 101, Level = LogLevel.Error, Message = "Model {Model} failed to load: {Reason}")]
    private partial void LogLoadFailed(string model, string reason);

    [LoggerMessage(EventId = 102, Level = LogLevel.Error, Message = "Model {Model} version {Version} failed to load: {Reason}")]
    private partial void LogVersionFailed(string model, long version, string reason);

    [LoggerMessage(EventId = 103, Level = LogLevel.Information, Message = "Unloaded model {Model}")]
    private partial void LogUnloaded(string model);

    [LoggerMessage(EventId = 104, Level = LogLevel.Warning, Message = "Model folder '{Folder}' is not loaded: a model name is {Grammar}")]
    private partial void LogInvalidName(string folder, string grammar);
}
