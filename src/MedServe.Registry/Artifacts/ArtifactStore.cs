using System.Collections.Concurrent;
using System.Diagnostics;
using System.Security.Cryptography;
using MedServe.Registry.Store;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace MedServe.Registry.Artifacts;

/// <summary>
/// Content-addressed model files: <c>&lt;root&gt;/sha256/&lt;first two hex&gt;/&lt;digest&gt;</c>. A file is
/// written once under its own hash, so the same model registered twice is stored once, and an
/// open checks that the bytes still hash to their name. Bytes arrive in a private staging folder
/// and enter the store only when the registration that brought them commits; folders are 0700 and
/// files 0600, since a model may be a hospital's property and a failed upload may be anything.
/// <para>
/// With an object store, the folder is this replica's cache of it: a commit uploads the bytes
/// before the registration is recorded, and an open that misses (or finds a corrupt copy) fetches
/// the blob, hashing it as it arrives, and caches it only when it hashes to its name.
/// </para>
/// </summary>
public sealed partial class ArtifactStore(string root, IArtifactObjectStore? objectStore = null, ILogger<ArtifactStore>? logger = null)
{
    internal const UnixFileMode FolderMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    internal const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly ILogger _logger = (ILogger?)logger ?? NullLogger.Instance;

    // One fetch per digest at a time: a second caller waits and finds the first one's file.
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _fetches = new(StringComparer.Ordinal);

    public string Root { get; } = root;

    /// <summary>The shared tier, or null when the folder is the whole store.</summary>
    public IArtifactObjectStore? ObjectStore { get; } = objectStore;

    /// <summary>Stores the stream's bytes; returns their SHA-256 (lowercase hex).</summary>
    public async Task<string> PutAsync(Stream content, CancellationToken cancellationToken = default)
    {
        using var staged = await StageAsync(content, long.MaxValue, cancellationToken).ConfigureAwait(false);
        await staged.CommitAsync(cancellationToken).ConfigureAwait(false);
        return staged.Digest;
    }

    /// <summary>
    /// Writes the stream as <c>model.onnx</c> alone in a fresh staging folder (so a model inspected
    /// there can reach no other file) and hashes it. Disposing the result removes the folder.
    /// </summary>
    public async Task<StagedArtifact> StageAsync(Stream content, long maxBytes, CancellationToken cancellationToken = default)
    {
        var folder = Path.Combine(CreatePrivateFolder(Path.Combine(Root, "staging")), Guid.NewGuid().ToString("N"));
        CreatePrivateFolder(folder);
        var path = Path.Combine(folder, "model.onnx");
        try
        {
            string digest;
            await using (var file = new FileStream(path, PrivateFileOptions()))
            {
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                var buffer = new byte[81920];
                long total = 0;
                int read;
                while ((read = await content.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
                {
                    total += read;
                    if (total > maxBytes)
                    {
                        throw new RegistryException(RegistryError.Invalid, $"the model is larger than the limit of {maxBytes} bytes (MedServe:Registry:MaxArtifactBytes)");
                    }

                    hash.AppendData(buffer, 0, read);
                    await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                }

                digest = Convert.ToHexStringLower(hash.GetHashAndReset());
            }

            return new StagedArtifact(this, folder, path, digest);
        }
        catch
        {
            Directory.Delete(folder, recursive: true);
            throw;
        }
    }

    /// <summary>
    /// Uploads what only this replica's cache holds (versions registered before the object store
    /// was configured), so every replica can fetch them. Only files that still hash to their name
    /// go up: a corrupt cache file must never become the shared copy.
    /// </summary>
    /// <returns>How many artifacts were uploaded, and how many corrupt ones were left out.</returns>
    public async Task<(int Uploaded, int Corrupt)> UploadMissingAsync(CancellationToken cancellationToken = default)
    {
        var folder = Path.Combine(Root, "sha256");
        if (ObjectStore is not { } objects || !Directory.Exists(folder))
        {
            return (0, 0);
        }

        var (uploaded, corrupt) = (0, 0);
        foreach (var path in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories))
        {
            var digest = Path.GetFileName(path);
            if (digest.Length != 64 || !digest.All(char.IsAsciiHexDigitLower) || await objects.ExistsAsync(digest, cancellationToken).ConfigureAwait(false))
            {
                continue;
            }

            string actual;
            await using (var file = File.OpenRead(path))
            {
                actual = Convert.ToHexStringLower(await SHA256.HashDataAsync(file, cancellationToken).ConfigureAwait(false));
            }

            if (actual != digest)
            {
                corrupt++;
                LogCorruptNotUploaded(_logger, digest, actual);
                continue;
            }

            await SendAsync(objects, digest, path, cancellationToken).ConfigureAwait(false);
            uploaded++;
        }

        return (uploaded, corrupt);
    }

    /// <summary>
    /// The file's path after checking its bytes still hash to <paramref name="digest"/>. With an
    /// object store, a file missing here or corrupt here is fetched from it first.
    /// </summary>
    /// <exception cref="InvalidDataException">The artifact is nowhere, or no good copy of it is.</exception>
    /// <exception cref="ArtifactObjectStoreException">The object store failed or could not be reached.</exception>
    public async Task<string> OpenVerifiedAsync(string digest, CancellationToken cancellationToken = default)
    {
        var path = PathOf(digest);
        var actual = await HashFileAsync(path, cancellationToken).ConfigureAwait(false);
        if (actual == digest)
        {
            return path;
        }

        if (ObjectStore is null)
        {
            throw new InvalidDataException(actual is null
                ? $"artifact sha256:{digest} is missing from the artifact store"
                : $"artifact sha256:{digest} is corrupt: its bytes hash to {actual}");
        }

        var gate = _fetches.GetOrAdd(digest, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // A caller that waited may find the file the one before it fetched.
            actual = await HashFileAsync(path, cancellationToken).ConfigureAwait(false);
            if (actual == digest)
            {
                return path;
            }

            if (actual is not null)
            {
                LogCorruptCopy(_logger, digest, actual, ObjectStore.Name);
            }

            await FetchAsync(ObjectStore, digest, path, cancellationToken).ConfigureAwait(false);
            return path;
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// Downloads into a private temporary file, hashing the bytes as they are written, and moves it
    /// over the cache's copy only when the hash is the name: a bad blob never enters the cache.
    /// </summary>
    private async Task FetchAsync(IArtifactObjectStore objects, string digest, string path, CancellationToken cancellationToken)
    {
        // ".tmp": a backup taken meanwhile leaves a half-downloaded file out.
        var temporary = Path.Combine(CreatePrivateFolder(Path.Combine(Root, "staging")), Guid.NewGuid().ToString("N") + ".download.tmp");
        var started = Stopwatch.GetTimestamp();
        try
        {
            string actual;
            long bytes;
            await using (var file = new FileStream(temporary, PrivateFileOptions()))
            {
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                if (!await objects.DownloadAsync(digest, new HashingStream(file, hash), cancellationToken).ConfigureAwait(false))
                {
                    throw new InvalidDataException($"artifact sha256:{digest} is missing from the artifact cache and from the object store {objects.Name}");
                }

                // On disk before the rename, so a crash never leaves a cached name over missing bytes.
                await file.FlushAsync(cancellationToken).ConfigureAwait(false);
                file.Flush(flushToDisk: true);
                actual = Convert.ToHexStringLower(hash.GetHashAndReset());
                bytes = file.Length;
            }

            if (actual != digest)
            {
                throw new InvalidDataException($"artifact sha256:{digest} in the object store {objects.Name} is corrupt: its bytes hash to {actual}; it was not cached");
            }

            CreatePrivateFolder(Path.GetDirectoryName(path)!);
            File.Move(temporary, path, overwrite: true);
            LogFetched(_logger, digest, bytes, Stopwatch.GetElapsedTime(started).TotalMilliseconds, objects.Name);
        }
        finally
        {
            File.Delete(temporary);
        }
    }

    /// <summary>The file's SHA-256, or null when there is no file.</summary>
    private static async Task<string?> HashFileAsync(string path, CancellationToken cancellationToken)
    {
        try
        {
            await using var file = File.OpenRead(path);
            return Convert.ToHexStringLower(await SHA256.HashDataAsync(file, cancellationToken).ConfigureAwait(false));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Uploads the staged bytes unless the object store has them; the look-up first spares resending a large model.</summary>
    private async Task UploadAsync(IArtifactObjectStore objects, string digest, string path, CancellationToken cancellationToken)
    {
        if (!await objects.ExistsAsync(digest, cancellationToken).ConfigureAwait(false))
        {
            await SendAsync(objects, digest, path, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task SendAsync(IArtifactObjectStore objects, string digest, string path, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        await objects.UploadAsync(digest, path, cancellationToken).ConfigureAwait(false);
        LogUploaded(_logger, digest, new FileInfo(path).Length, Stopwatch.GetElapsedTime(started).TotalMilliseconds, objects.Name);
    }

    private static FileStreamOptions PrivateFileOptions()
    {
        var options = new FileStreamOptions
        {
            Mode = System.IO.FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, BufferSize = 81920,
            Options = FileOptions.Asynchronous,
        };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = FileMode;
        }

        return options;
    }

    public string PathOf(string digest)
    {
        if (digest.Length != 64 || !digest.All(Uri.IsHexDigit))
        {
            throw new ArgumentException($"'{digest}' is not a SHA-256 digest", nameof(digest));
        }

        return Path.Combine(Root, "sha256", digest[..2], digest);
    }

    private static string CreatePrivateFolder(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
        }
        else
        {
            // Each missing folder gets the mode, not only the last (CreateDirectory gives parents the default).
            var missing = new Stack<string>();
            for (var folder = Path.GetFullPath(path); !Directory.Exists(folder); folder = Path.GetDirectoryName(folder)!)
            {
                missing.Push(folder);
            }

            while (missing.TryPop(out var folder))
            {
                Directory.CreateDirectory(folder, FolderMode);
            }
        }

        return path;
    }

    /// <summary>Bytes waiting for their registration; they enter the store on <see cref="StagedArtifact.CommitAsync"/> and are gone on dispose otherwise.</summary>
    public sealed class StagedArtifact : IDisposable
    {
        private readonly ArtifactStore _store;
        private readonly string _folder;
        private bool _created;

        internal StagedArtifact(ArtifactStore store, string folder, string path, string digest)
        {
            _store = store;
            _folder = folder;
            Path = path;
            Digest = digest;
        }

        /// <summary>The staged file, alone in its folder.</summary>
        public string Path { get; }

        public string Digest { get; }

        /// <summary>
        /// Uploads the bytes to the object store, when there is one, then moves them into the store
        /// under their digest (once: an identical file already there stays). Called before the
        /// registration is recorded, so no replica can read a version whose blob is not there yet.
        /// </summary>
        public async Task CommitAsync(CancellationToken cancellationToken = default)
        {
            // The staged bytes, not the cache's copy: these are the ones just hashed.
            if (_store.ObjectStore is { } objects)
            {
                await _store.UploadAsync(objects, Digest, Path, cancellationToken).ConfigureAwait(false);
            }

            var target = _store.PathOf(Digest);
            CreatePrivateFolder(System.IO.Path.GetDirectoryName(target)!);
            if (!File.Exists(target))
            {
                File.Move(Path, target);
                _created = true;
            }
        }

        /// <summary>
        /// Undoes <see cref="CommitAsync"/> in the cache when it added the file, for a registration that
        /// failed after it. A blob it uploaded stays: content-addressed, it is harmless, and another
        /// registration of the same bytes may already name it.
        /// </summary>
        public void Revert()
        {
            if (_created)
            {
                File.Delete(_store.PathOf(Digest));
                _created = false;
            }
        }

        public void Dispose()
        {
            if (Directory.Exists(_folder))
            {
                Directory.Delete(_folder, recursive: true);
            }
        }
    }
}
