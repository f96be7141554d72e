namespace MedServe.Registry.Store;

/// <summary>
/// The registry's records: models, versions, tags, aliases and every alias change. SQLite
/// embedded by default; the SQL stays portable so a PostgreSQL store can fill the same contract.
/// </summary>
public interface IRegistryStore
{
    Task<RegisteredModel> CreateModelAsync(string name, string description, CancellationToken cancellationToken = default);

    Task<RegisteredModel?> GetModelAsync(string name, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<RegisteredModel>> ListModelsAsync(CancellationToken cancellationToken = default);

    /// <summary>Adds a version with the next integer version of its model, atomically among concurrent writers.</summary>
    Task<ModelVersionRecord> AddVersionAsync(NewModelVersion version, CancellationToken cancellationToken = default);

    Task<ModelVersionRecord?> GetVersionAsync(string model, long version, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<ModelVersionRecord>> ListVersionsAsync(string model, CancellationToken cancellationToken = default);

    Task UpdateModelAsync(string name, string description, CancellationToken cancellationToken = default);

    /// <summary>Renames a model with its versions, tags and history; refused while an alias names one of its versions.</summary>
    Task RenameModelAsync(string name, string newName, CancellationToken cancellationToken = default);

    /// <summary>Deletes a model with its versions; refused while an alias names one of them.</summary>
    Task DeleteModelAsync(string name, CancellationToken cancellationToken = default);

    Task UpdateVersionAsync(string model, long version, string? description, string? stage, CancellationToken cancellationToken = default);

    Task DeleteTagAsync(string model, long? version, string key, CancellationToken cancellationToken = default);

    /// <summary>Deletes a version; refused while an alias names it.</summary>
    Task DeleteVersionAsync(string model, long version, CancellationToken cancellationToken = default);

    Task SetTagAsync(string model, long? version, string key, string value, CancellationToken cancellationToken = default);

    Task<IReadOnlyDictionary<string, string>> GetTagsAsync(string model, long? version, CancellationToken cancellationToken = default);

    /// <summary>Points an alias at a version (or removes it, with null) and records the change.</summary>
    Task SetAliasAsync(string model, string alias, long? version, string changedBy, string reason, CancellationToken cancellationToken = default);

    Task<IReadOnlyDictionary<string, long>> GetAliasesAsync(string model, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<AliasChange>> GetAliasHistoryAsync(string model, CancellationToken cancellationToken = default);

    /// <summary>Records a new revision of the model's monitoring spec (config.json's <c>monitoring</c> form); every revision is kept.</summary>
    Task<MonitoringRevision> SetMonitoringAsync(string model, string spec, string changedBy, CancellationToken cancellationToken = default);

    /// <summary>Every revision of the model's monitoring spec, oldest first (the last is in force).</summary>
    Task<IReadOnlyList<MonitoringRevision>> GetMonitoringHistoryAsync(string model, CancellationToken cancellationToken = default);
}
