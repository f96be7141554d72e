namespace MedServe.Lifecycle;

/// <summary>Triton's model lifecycle states; the names are what the repository index reports.</summary>
public enum ModelState
{
    Unknown,
    Loading,
    Ready,
    Unloading,
    Unavailable,
}

public static class ModelStates
{
    public static string ToWireName(this ModelState state) => state switch
    {
        ModelState.Loading => "LOADING",
        ModelState.Ready => "READY",
        ModelState.Unloading => "UNLOADING",
        ModelState.Unavailable => "UNAVAILABLE",
        _ => "UNKNOWN",
    };
}

/// <summary>One row of the repository index: a model version and its state, or a model alone.</summary>
public sealed record RepositoryIndexEntry(string Name, long? Version, ModelState? State, string? Reason);
