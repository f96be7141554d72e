namespace MedServe.Registry.Store;

/// <summary>A registered model: a name that versions and aliases hang from.</summary>
public sealed record RegisteredModel(string Name, string Description, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

/// <summary>What a registration brings; the store assigns the integer version.</summary>
public sealed record NewModelVersion(
    string Model,
    string SemanticVersion,
    string ArtifactSha256,
    string Source,
    string SignatureJson,
    string ModelCardJson,
    string LineageJson,
    string MetricsJson,
    string RegisteredBy)
{
    /// <summary>Why the version cannot be served (its source could not be read); empty when it can.</summary>
    public string UnservableReason { get; init; } = "";

    /// <summary>
    /// The newest servable version (its integer version, 0 for none) when the semantic-version
    /// check was made; the store refuses the insert, in the same transaction, if another servable
    /// version was added since (<see cref="RegistryConcurrencyException"/>). Null: no check.
    /// </summary>
    public long? CheckedAgainst { get; init; }
}

/// <summary>A model version as recorded: the integer version is the one the inference protocol serves.</summary>
public sealed record ModelVersionRecord(
    string Model,
    long Version,
    string SemanticVersion,
    string ArtifactSha256,
    string Source,
    string SignatureJson,
    string ModelCardJson,
    string LineageJson,
    string MetricsJson,
    string RegisteredBy,
    DateTimeOffset CreatedAt)
{
    public string Description { get; init; } = "";

    /// <summary>MLflow's stage: None, Staging, Production or Archived.</summary>
    public string Stage { get; init; } = "None";

    /// <summary>Why the version cannot be served; empty when it can.</summary>
    public string UnservableReason { get; init; } = "";

    public bool Servable => UnservableReason.Length == 0;
}

/// <summary>One change of an alias: what it named before and after, who changed it, when and why.</summary>
public sealed record AliasChange(string Model, string Alias, long? From, long? To, string ChangedBy, string Reason, DateTimeOffset ChangedAt);

/// <summary>A name or a version conflicts with what the registry holds, or is missing; the message says which.</summary>
public class RegistryException(RegistryError error, string message) : Exception(message)
{
    public RegistryError Error { get; } = error;
}

/// <summary>A servable version was registered between the semantic-version check and the insert: check again.</summary>
public sealed class RegistryConcurrencyException(string message) : RegistryException(RegistryError.Invalid, message);

public enum RegistryError
{
    NotFound,
    AlreadyExists,
    Invalid,
}

/// <summary>One revision of a model's monitoring spec, as set through the registry.</summary>
public sealed record MonitoringRevision(string Model, long Revision, string Spec, string ChangedBy, DateTimeOffset ChangedAt);
