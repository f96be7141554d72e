using System.Security.Cryptography;

namespace MedServe.Registry.Artifacts;

/// <summary>
/// Content-addressed model files: <c>&lt;root&gt;/sha256/&lt;first two hex&gt;/&lt;digest&gt;</c>. A file is
/// written once under its own hash, so the same model registered twice is stored once, and an
/// open checks that the bytes still hash to their name.
/// </summary>
public sealed class ArtifactStore(string root)
{
    public string Root { get; } = root;

    /// <summary>Stores the stream's bytes; returns their SHA-256 (lowercase hex).</summary>
    public async Task<string> PutAsync(Stream content, CancellationToken cancellationToken = default)
    {
        var staging = Path.Combine(Root, "staging");
        Directory.CreateDirectory(staging);
        var temporary = Path.Combine(staging, Guid.NewGuid().ToString("N"));
        string digest;
        await using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, useAsync: true))
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[81920];
            int read;
            while ((read = await content.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
            }

            digest = Convert.ToHexStringLower(hash.GetHashAndReset());
        }

        var target = PathOf(digest);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        if (File.Exists(target))
        {
            File.Delete(temporary);
        }
        else
        {
            File.Move(temporary, target);
        }

        return digest;
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
}
