using System.Security.Cryptography;
using System.Text.Json;
using MedServe.Compliance.Encryption;
using Microsoft.Data.Sqlite;

namespace MedServe.Backup;

/// <summary>One file of a backup, as the manifest lists it: where it goes in the data dir, its size and SHA-256.</summary>
public sealed record BackupFile(string Path, long Bytes, string Sha256, bool Wrapped);

/// <summary>
/// A consistent backup of a data dir while its server runs, and its restore into a fresh one.
/// <list type="bullet">
/// <item>Each SQLite database through SQLite's online backup (a snapshot of that file at one
/// moment, whatever the server writes meanwhile). The projections are rebuilt from the journal
/// anyway, so the files need not be one moment together.</item>
/// <item>The journal's segments, whole (a sealed segment never changes; the open one is cut at
/// its last complete record on restore, as after a crash), with its anchor.</item>
/// <item>The content-addressed artifacts, and the model repository when it lives in the data dir.</item>
/// <item>The secrets (pseudonym secret, journal signing key) wrapped by the master key: the
/// master key itself is never in a backup; restore needs it given.</item>
/// </list>
/// A manifest lists every file with its SHA-256; restore checks each before it writes anything.
/// </summary>
public static class DataDirBackup
{
    public const string ManifestName = "manifest.json";

    /// <summary>The SQLite databases a data dir holds: copied by SQLite's online backup, not as files.</summary>
    private static readonly string[] Databases = ["registry.db", "keys.db", "predictions.db", "drift.db", "alerts.db"];

    private static readonly string[] Secrets = ["admin.key", "secrets/pseudonym.key", "secrets/audit-signing.pem", "secrets/audit-signing.pub.pem"];

    public static IReadOnlyList<BackupFile> Backup(string dataDir, string target, MasterKeyRing masterKeys, Action<string, int, int>? progress = null)
    {
        dataDir = Path.GetFullPath(dataDir);
        target = Path.GetFullPath(target);
        if (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any())
        {
            throw new InvalidOperationException("the backup folder must be new or empty");
        }

        if (target.StartsWith(dataDir + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw new InvalidOperationException("the backup folder must be outside the data dir");
        }

        Directory.CreateDirectory(target);
        var envelopes = new EnvelopeEncryption(masterKeys);
        var plan = new List<(string Relative, Func<string, bool> Copy)>();
        foreach (var db in Databases.Where(db => File.Exists(Path.Combine(dataDir, db))))
        {
            plan.Add((db, destination => OnlineBackup(Path.Combine(dataDir, db), destination)));
        }

        // The anchor before the journal: it names a head the journal had reached, so the segments copied
        // after it reach at least that far (copied the other way round, the copy could end before its anchor).
        if (File.Exists(Path.Combine(dataDir, "journal.anchor")))
        {
            plan.Add(("journal.anchor", destination => CopyShared(Path.Combine(dataDir, "journal.anchor"), destination)));
        }

        // The journal's segments in order (each sealed before the next begins; the open one up to where it is written).
        foreach (var folder in new[] { "journal", "artifacts", "models" })
        {
            var root = Path.Combine(dataDir, folder);
            if (!Directory.Exists(root))
            {
                continue;
            }

            foreach (var file in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            {
                var relative = Path.GetRelativePath(dataDir, file);
                if (relative.EndsWith(".tmp", StringComparison.Ordinal) || Path.GetFileName(file).StartsWith('.'))
                {
                    continue;
                }

                plan.Add((relative, destination => CopyShared(file, destination)));
            }
        }

        foreach (var secret in Secrets.Where(s => File.Exists(Path.Combine(dataDir, s))))
        {
            plan.Add((secret + ".wrapped", destination =>
            {
                File.WriteAllBytes(destination, envelopes.Encrypt(File.ReadAllBytes(Path.Combine(dataDir, secret)), System.Text.Encoding.UTF8.GetBytes(secret)));
                return true;
            }));
        }

        var files = new List<BackupFile>();
        for (var i = 0; i < plan.Count; i++)
        {
            var (relative, copy) = plan[i];
            progress?.Invoke(relative, i + 1, plan.Count);
            var destination = Path.Combine(target, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            if (!copy(destination))
            {
                continue; // gone meanwhile (a reloaded model's temporary file): nothing to keep
            }

            files.Add(new BackupFile(relative, new FileInfo(destination).Length, Hash(destination), relative.EndsWith(".wrapped", StringComparison.Ordinal)));
        }

        File.WriteAllText(Path.Combine(target, ManifestName), JsonSerializer.Serialize(new Manifest(1, DateTimeOffset.UtcNow, files), new JsonSerializerOptions { WriteIndented = true }));
        return files;
    }

    public static IReadOnlyList<BackupFile> Restore(string source, string dataDir, MasterKeyRing masterKeys, Action<string, int, int>? progress = null)
    {
        source = Path.GetFullPath(source);
        dataDir = Path.GetFullPath(dataDir);
        if (Directory.Exists(dataDir) && Directory.EnumerateFileSystemEntries(dataDir).Any())
        {
            throw new InvalidOperationException("restore writes a fresh data dir: the target must be new or empty");
        }

        var manifestPath = Path.Combine(source, ManifestName);
        if (!File.Exists(manifestPath))
        {
            throw new InvalidOperationException($"not a MedServe backup: no {ManifestName}");
        }

        var manifest = JsonSerializer.Deserialize<Manifest>(File.ReadAllText(manifestPath)) ?? throw new InvalidOperationException($"{ManifestName} is empty");
        if (manifest.Format != 1)
        {
            throw new InvalidOperationException($"backup format {manifest.Format} is not one this MedServe reads");
        }

        // Every file checked before one is written: a damaged backup restores nothing.
        foreach (var file in manifest.Files)
        {
            var path = Confined(source, file.Path);
            if (!File.Exists(path) || Hash(path) != file.Sha256)
            {
                throw new InvalidOperationException($"the backup's {file.Path} is missing or does not match its SHA-256");
            }
        }

        var envelopes = new EnvelopeEncryption(masterKeys);
        Directory.CreateDirectory(dataDir);
        for (var i = 0; i < manifest.Files.Count; i++)
        {
            var file = manifest.Files[i];
            progress?.Invoke(file.Path, i + 1, manifest.Files.Count);
            var from = Confined(source, file.Path);
            if (file.Wrapped)
            {
                var secret = file.Path[..^".wrapped".Length];
                byte[] clear;
                try
                {
                    clear = envelopes.Decrypt(File.ReadAllBytes(from), System.Text.Encoding.UTF8.GetBytes(secret));
                }
                catch (CryptographicException)
                {
                    throw new InvalidOperationException($"the backup's {secret} does not unwrap with the given master key (give the key ring the backup was taken with)");
                }

                var to = Confined(dataDir, secret);
                Directory.CreateDirectory(Path.GetDirectoryName(to)!);
                File.WriteAllBytes(to, clear);
                if (!OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(to, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                }
            }
            else
            {
                var to = Confined(dataDir, file.Path);
                Directory.CreateDirectory(Path.GetDirectoryName(to)!);
                File.Copy(from, to);
            }
        }

        if (Directory.Exists(Path.Combine(dataDir, "secrets")))
        {
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(Path.Combine(dataDir, "secrets"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
        }

        return manifest.Files;
    }

    private sealed record Manifest(int Format, DateTimeOffset TakenAt, IReadOnlyList<BackupFile> Files);

    /// <summary>A manifest's path stays inside its folder: a backup is data, and data may be hostile.</summary>
    private static string Confined(string root, string relative)
    {
        var full = Path.GetFullPath(Path.Combine(root, relative));
        return full.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal) && !Path.IsPathRooted(relative)
            ? full
            : throw new InvalidOperationException("the backup's manifest names a path outside its folder");
    }

    /// <summary>
    /// SQLite's online backup of one database. A step the server's writer holds busy is tried
    /// again (the backup API does not wait on its own), for up to 30 s.
    /// </summary>
    private static bool OnlineBackup(string source, string destination)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                using var from = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = source, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
                using var to = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = destination, Pooling = false }.ToString());
                from.Open();
                to.Open();
                from.BackupDatabase(to);
                return true;
            }
            catch (SqliteException e) when (e.SqliteErrorCode is 5 or 6 && attempt < 300)
            {
                Thread.Sleep(100); // SQLITE_BUSY or SQLITE_LOCKED: the server is mid-write
            }
        }
    }

    /// <summary>Copies a file another process may be appending to (the journal's open segment), as it is now.</summary>
    private static bool CopyShared(string source, string destination)
    {
        try
        {
            using var from = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var to = File.Create(destination);
            from.CopyTo(to);
            return true;
        }
        catch (FileNotFoundException)
        {
            return false;
        }
    }

    private static string Hash(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
