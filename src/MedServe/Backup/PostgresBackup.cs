using System.Diagnostics;
using Npgsql;

namespace MedServe.Backup;

/// <summary>
/// The shared PostgreSQL part of a backup (registry, keys, experiments, alerts, drift references,
/// the prediction projections): pg_dump's custom format, a consistent snapshot taken while the
/// replicas write, and pg_restore into an empty database. Each replica's journal and secrets are
/// backed up from its data dir by <see cref="DataDirBackup"/>.
/// </summary>
public static class PostgresBackup
{
    public const string DumpName = "postgres.dump";

    public static void Dump(string connectionString, string file) =>
        Run("pg_dump", connectionString, ["--format=custom", "--no-owner", "--file", file]);

    /// <summary>Into an empty database (the replicas stopped); refuses one that already holds MedServe's tables.</summary>
    public static void Restore(string file, string connectionString)
    {
        RequireEmpty(connectionString);
        Run("pg_restore", connectionString, ["--no-owner", "--exit-on-error", file]);
    }

    /// <summary>Refuses a database that holds tables already (checked before anything of a restore is written).</summary>
    public static void RequireEmpty(string connectionString)
    {
        using var connection = new NpgsqlConnection(connectionString);
        connection.Open();
        using var check = new NpgsqlCommand("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public';", connection);
        if (Convert.ToInt64(check.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) > 0)
        {
            throw new InvalidOperationException("the PostgreSQL database to restore into holds tables already: restore into a new, empty database");
        }
    }

    /// <summary>Runs a PostgreSQL client with the connection in libpq's environment variables (the password never on a command line).</summary>
    private static void Run(string tool, string connectionString, string[] arguments)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        var start = new ProcessStartInfo(Locate(tool), tool == "pg_restore" ? ["--dbname", builder.Database ?? "postgres", .. arguments] : [.. arguments, builder.Database ?? "postgres"])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        start.Environment["PGHOST"] = builder.Host ?? "localhost";
        start.Environment["PGPORT"] = builder.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["PGUSER"] = builder.Username ?? Environment.UserName;
        if (builder.Password is { Length: > 0 } password)
        {
            start.Environment["PGPASSWORD"] = password;
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{tool} could not be started");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        output.Wait();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{tool} failed ({process.ExitCode}): {error.Trim()}");
        }
    }

    private static string Locate(string tool)
    {
        var folders = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(Directory.Exists("/usr/lib/postgresql") ? Directory.GetDirectories("/usr/lib/postgresql").OrderDescending().Select(d => Path.Combine(d, "bin")) : []);
        return folders.Select(f => Path.Combine(f, tool)).FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException($"{tool} is not installed (apt-get install postgresql-client): it backs up and restores the shared PostgreSQL");
    }
}
