using System.CommandLine;
using MedServe.Backup;
using MedServe.Compliance.Encryption;
using Spectre.Console;

namespace MedServe.Cli;

/// <summary><c>medserve backup DIR</c> and <c>medserve restore DIR</c>: a data dir's consistent snapshot (the server may be running), and its return into a fresh data dir.</summary>
internal static class BackupCommand
{
    public static IEnumerable<Command> Create()
    {
        var folder = new Argument<DirectoryInfo>("dir") { Description = "The backup folder (new or empty)" };
        var dataDir = new Option<string>("--data-dir") { Description = "The server's data dir", DefaultValueFactory = _ => ".medserve" };
        var keyFile = new Option<FileInfo>("--master-key-file") { Description = "The master key ring the secrets are wrapped with (default: the data dir's secrets/master.keys)" };
        var postgres = new Option<string>("--postgres")
        {
            Description = "The shared PostgreSQL's connection string (default: MEDSERVE_STORE__CONNECTIONSTRING when MEDSERVE_STORE__PROVIDER is postgres): dumped beside the data dir",
            DefaultValueFactory = _ => SharedPostgres(),
        };
        var backup = new Command("backup", "A consistent snapshot of a data dir, its server running or not: databases (SQLite online backup, or pg_dump of the shared PostgreSQL), journal, artifacts, models, secrets wrapped by the master key")
        {
            folder, dataDir, keyFile, postgres,
        };
        backup.SetAction(parse => Run(() =>
        {
            var data = parse.GetValue(dataDir)!;
            var keys = Keys(parse.GetValue(keyFile)?.FullName ?? Path.Combine(data, "secrets", "master.keys"));
            var files = WithProgress("backing up", (progress) => DataDirBackup.Backup(data, parse.GetValue(folder)!.FullName, keys, progress));
            if (parse.GetValue(postgres) is { Length: > 0 } shared)
            {
                PostgresBackup.Dump(shared, Path.Combine(parse.GetValue(folder)!.FullName, PostgresBackup.DumpName));
                Console.WriteLine($"dumped the shared PostgreSQL to {PostgresBackup.DumpName}");
            }

            Console.WriteLine($"backed up {files.Count} files ({files.Sum(f => f.Bytes) / 1024.0 / 1024.0:0.0} MiB) to {parse.GetValue(folder)!.Name}");
        }));

        var restoreFolder = new Argument<DirectoryInfo>("dir") { Description = "The backup folder" };
        var target = new Option<string>("--data-dir") { Description = "The data dir to restore into (new or empty)", Required = true };
        var restoreKey = new Option<FileInfo>("--master-key-file") { Description = "The master key ring the backup was taken with", Required = true };
        var embed = new Option<bool>("--embed-master-key") { Description = "Also write the ring into the new data dir's secrets/ (the embedded default); otherwise configure Encryption:MasterKeyFile" };
        var restorePostgres = new Option<string>("--postgres")
        {
            Description = "An empty PostgreSQL database to restore the backup's postgres.dump into (default: MEDSERVE_STORE__CONNECTIONSTRING when MEDSERVE_STORE__PROVIDER is postgres)",
            DefaultValueFactory = _ => SharedPostgres(),
        };
        var restore = new Command("restore", "Brings a backup back into a fresh data dir, every file checked against the manifest first") { restoreFolder, target, restoreKey, embed, restorePostgres };
        restore.SetAction(parse => Run(() =>
        {
            var keyPath = parse.GetValue(restoreKey)!.FullName;
            var keys = Keys(keyPath);
            var data = parse.GetValue(target)!;
            var dump = Path.Combine(parse.GetValue(restoreFolder)!.FullName, PostgresBackup.DumpName);
            var shared = parse.GetValue(restorePostgres);
            if (File.Exists(dump))
            {
                PostgresBackup.RequireEmpty(shared is { Length: > 0 }
                    ? shared
                    : throw new InvalidOperationException($"the backup holds {PostgresBackup.DumpName}: give --postgres with an empty database to restore it into"));
            }

            var files = WithProgress("restoring", progress => DataDirBackup.Restore(parse.GetValue(restoreFolder)!.FullName, data, keys, progress));
            if (parse.GetValue(embed))
            {
                var ring = Path.Combine(data, "secrets", "master.keys");
                Directory.CreateDirectory(Path.GetDirectoryName(ring)!);
                File.Copy(keyPath, ring);
                if (!OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(ring, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                }
            }

            if (File.Exists(dump))
            {
                PostgresBackup.Restore(dump, shared!);
                Console.WriteLine("restored the shared PostgreSQL");
            }

            Console.WriteLine($"restored {files.Count} files into {Path.GetFileName(Path.GetFullPath(data))}");
        }));
        return [backup, restore];
    }

    private static string SharedPostgres() =>
        string.Equals(Environment.GetEnvironmentVariable("MEDSERVE_STORE__PROVIDER"), "postgres", StringComparison.OrdinalIgnoreCase)
            ? Environment.GetEnvironmentVariable("MEDSERVE_STORE__CONNECTIONSTRING") ?? ""
            : "";

    private static MasterKeyRing Keys(string path)
    {
        try
        {
            return MasterKeyRing.Parse(File.ReadAllText(path));
        }
        catch (IOException)
        {
            throw new InvalidOperationException("the master key ring cannot be read: give --master-key-file");
        }
    }

    private static IReadOnlyList<BackupFile> WithProgress(string what, Func<Action<string, int, int>, IReadOnlyList<BackupFile>> work)
    {
        if (!AnsiConsole.Profile.Capabilities.Interactive)
        {
            return work((_, _, _) => { });
        }

        IReadOnlyList<BackupFile> files = [];
        AnsiConsole.Progress().Start(progress =>
        {
            var task = progress.AddTask(what);
            files = work((_, done, total) =>
            {
                task.MaxValue = total;
                task.Value = done;
            });
        });
        return files;
    }

    private static int Run(Action action)
    {
        try
        {
            action();
            return 0;
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or UnauthorizedAccessException or Microsoft.Data.Sqlite.SqliteException or Npgsql.NpgsqlException or ArgumentException)
        {
            Console.Error.WriteLine(e.Message);
            return 1;
        }
    }
}
