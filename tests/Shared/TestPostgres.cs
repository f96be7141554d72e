using System.Diagnostics;
using System.Reflection;
using MedServe.Storage;
using Npgsql;
using Xunit.Sdk;

namespace MedServe.Tests.Support;

/// <summary>
/// A real PostgreSQL for the store tests: the one named by <c>MEDSERVE_TEST_POSTGRES</c> (a
/// connection string whose user may create databases), or else Debian's PostgreSQL started once
/// per test run with initdb and pg_ctl on a free loopback port in a temp dir (as the postgres user
/// when the tests run as root), stopped when the run ends. Each test gets a database of its own.
/// </summary>
public static class TestPostgres
{
    public const string Variable = "MEDSERVE_TEST_POSTGRES";

    private static readonly Lazy<Task<string>> Server = new(StartAsync);

    /// <summary>Null when PostgreSQL can run here; otherwise why not and how to enable the tests.</summary>
    public static string? SkipReason { get; } = FindSkipReason();

    /// <summary>A connection string to a fresh, empty database.</summary>
    public static async Task<string> CreateDatabaseAsync()
    {
        var admin = await Server.Value.ConfigureAwait(false);
        var name = "medserve_test_" + Guid.NewGuid().ToString("N")[..16];
        await using (var connection = new NpgsqlConnection(admin))
        {
            await connection.OpenAsync().ConfigureAwait(false);
            await using var create = new NpgsqlCommand($"CREATE DATABASE {name};", connection);
            await create.ExecuteNonQueryAsync().ConfigureAwait(false);
        }

        // Idle connections close within seconds: hundreds of tests' pools stay under max_connections.
        return new NpgsqlConnectionStringBuilder(admin) { Database = name, Pooling = true, ConnectionIdleLifetime = 2, ConnectionPruningInterval = 1 }.ConnectionString;
    }

    /// <summary>A store database of the named provider: a SQLite file under <paramref name="root"/>, or a fresh PostgreSQL database.</summary>
    public static async Task<Database> OpenAsync(string provider, string root, string file = "store.db") => provider switch
    {
        "sqlite" => Database.OpenSqlite(Path.Combine(root, file)),
        "postgres" => await Database.OpenPostgresAsync(await CreateDatabaseAsync().ConfigureAwait(false), TimeProvider.System).ConfigureAwait(false),
        _ => throw new ArgumentOutOfRangeException(nameof(provider), provider, "sqlite or postgres"),
    };

    private static string? FindSkipReason() =>
        Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } || (Binary("initdb") is not null && Binary("pg_ctl") is not null)
            ? null
            : $"PostgreSQL is not installed here: install it (apt-get install postgresql; .ci/run does) or set {Variable} to a connection string whose user may create databases";

    private static string? Binary(string name)
    {
        var candidates = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(Directory.Exists("/usr/lib/postgresql") ? Directory.GetDirectories("/usr/lib/postgresql").OrderDescending().Select(d => Path.Combine(d, "bin")) : []);
        return candidates.Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
    }

    private static async Task<string> StartAsync()
    {
        if (Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } given)
        {
            return given;
        }

        var root = Path.Combine(Path.GetTempPath(), "medserve-pg-" + Guid.NewGuid().ToString("N")[..12]);
        var data = Path.Combine(root, "data");
        Directory.CreateDirectory(root);
        var asRoot = Environment.UserName == "root";
        if (asRoot)
        {
            // PostgreSQL refuses to run as root: its folder belongs to the postgres user.
            Run("chown", ["postgres:postgres", root], asRoot: false);
        }

        Run(Binary("initdb")!, ["-D", data, "-U", "medserve", "--auth=trust", "--no-sync", "-E", "UTF8"], asRoot);
        var port = LocalServices.FreePort();
        var options = $"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300";
        Run(Binary("pg_ctl")!, ["-D", data, "-l", Path.Combine(root, "log"), "-o", options, "-w", "-t", "60", "start"], asRoot);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Run(Binary("pg_ctl")!, ["-D", data, "-m", "immediate", "stop"], asRoot);
                Directory.Delete(root, recursive: true);
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or UnauthorizedAccessException)
            {
            }
        };
        var admin = $"Host=127.0.0.1;Port={port};Username=medserve;Database=postgres;Pooling=false";
        await using var connection = new NpgsqlConnection(admin);
        await connection.OpenAsync().ConfigureAwait(false);
        return admin;
    }

    private static void Run(string file, string[] arguments, bool asRoot)
    {
        var start = asRoot ? new ProcessStartInfo("runuser", ["-u", "postgres", "--", file, .. arguments]) : new ProcessStartInfo(file, arguments);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{Path.GetFileName(file)} failed ({process.ExitCode}): {error}{output.Result}");
        }
    }
}

/// <summary>The "postgres" row of a store test, skipped with <see cref="TestPostgres.SkipReason"/> where PostgreSQL cannot run.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class PostgresDataAttribute : DataAttribute
{
    public PostgresDataAttribute() => Skip = TestPostgres.SkipReason;

    public override IEnumerable<object[]> GetData(MethodInfo testMethod) => [["postgres"]];
}

/// <summary>A test that needs PostgreSQL, skipped with <see cref="TestPostgres.SkipReason"/> where it cannot run.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class PostgresFactAttribute : FactAttribute
{
    public PostgresFactAttribute() => Skip = TestPostgres.SkipReason;
}
