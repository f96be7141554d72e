namespace MedServe.Registry.Artifacts;

/// <summary>
/// The shared tier behind each replica's artifact cache: bytes by their SHA-256 (lowercase hex).
/// A name always holds the same bytes, so an upload only adds what is absent and never replaces;
/// what is downloaded is checked against its name by the caller, not trusted.
/// </summary>
public interface IArtifactObjectStore
{
    /// <summary>Where the artifacts are, for messages and logs: never a key or a signature.</summary>
    string Name { get; }

    Task<bool> ExistsAsync(string digest, CancellationToken cancellationToken = default);

    /// <summary>Stores the file under <paramref name="digest"/> unless a blob by that name exists (a concurrent identical upload is fine).</summary>
    Task UploadAsync(string digest, string path, CancellationToken cancellationToken = default);

    /// <summary>Writes the bytes stored under <paramref name="digest"/> to <paramref name="destination"/>, in order; false when there are none.</summary>
    Task<bool> DownloadAsync(string digest, Stream destination, CancellationToken cancellationToken = default);
}

/// <summary>The object store failed or could not be reached; the message names the store and the artifact, never a secret.</summary>
public sealed class ArtifactObjectStoreException(string message, Exception? inner = null) : IOException(message, inner);
