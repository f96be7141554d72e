using System.Security.Cryptography;
using MedServe.Registry.Store;

namespace MedServe.Registry.Artifacts;

/// <summary>
/// Content-addressed model files: <c>&lt;root&gt;/sha256/&lt;first two hex&gt;/&lt;digest&gt;</c>. A file is
/// written once under its own hash, so the same model registered twice is stored once, and an
/// open checks that the bytes still hash to their name. Bytes arrive in a private staging folder
/// and enter the store only when the registration that brought them commits; folders are 0700 and
/// files 0600, since a model may be a hospital's property and a failed upload may be anything.
/// </summary>
public sealed class ArtifactStore(string root)
{
    internal const UnixFileMode FolderMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    internal const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public string Root { get; } = root;

    /// <summary>Stores the stream's bytes; returns their SHA-256 (lowercase hex).</summary>
    public async Task<string> PutAsync(Stream content, CancellationToken cancellationToken = default)
    {
        using var staged = await StageAsync(content, long.MaxValue, cancellationToken).ConfigureAwait(false);
        staged.Commit();
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
            var options = new FileStreamOptions
            {
                Mode = System.IO.FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, BufferSize = 81920,
                Options = FileOptions.Asynchronous,
            };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = FileMode;
            }

            await using (var file = new FileStream(path, options))
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

    /// <summary>The file's path after checking its bytes still hash to <paramref name="digest"/>.</summary>
    public async Task<string> OpenVerifiedAsync(string digest, CancellationToken cancellationToken = default)
    {
        var path = PathOf(digest);
        if (!File.Exists(path))
        {
            throw new InvalidDataException($"artifact sha256:{digest} is missing from the artifact store");
        }

        await using var file = File.OpenRead(path);
        var actual = Convert.ToHexStringLower(await SHA256.HashDataAsync(file, cancellationToken).ConfigureAwait(false));
        return actual == digest
            ? path
            : throw new InvalidDataException($"artifact sha256:{digest} is corrupt: its bytes hash to {actual}");
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

    /// <summary>Bytes waiting for their registration; they enter the store on <see cref="Commit"/> and are gone on dispose otherwise.</summary>
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

        /// <summary>Moves the bytes into the store under their digest (once: an identical file already there stays).</summary>
        public void Commit()
        {
            var target = _store.PathOf(Digest);
            CreatePrivateFolder(System.IO.Path.GetDirectoryName(target)!);
            if (!File.Exists(target))
            {
                File.Move(Path, target);
                _created = true;
            }
        }

        /// <summary>Undoes <see cref="Commit"/> when it added the file, for a registration that failed after it.</summary>
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
