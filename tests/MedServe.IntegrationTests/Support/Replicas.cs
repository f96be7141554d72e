using System.Diagnostics;
using System.Net.Http.Headers;

namespace MedServe.IntegrationTests.Support;

/// <summary>
/// <c>medserve</c> processes sharing one PostgreSQL and one master key ring (a Kubernetes Secret in
/// deploy/: each replica decrypts what another logged), each with a data dir of its own under
/// <see cref="Work"/>. Disposing kills them and removes the folder.
/// </summary>
public sealed class Replicas : IDisposable
{
    private readonly List<ServerProcess> _servers = [];
    private readonly string _masterKeys = "k1:" + Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    public string Work { get; } = Path.Combine(Path.GetTempPath(), "medserve-replicas-" + Guid.NewGuid().ToString("N"));

    public IReadOnlyList<ServerProcess> Started => _servers;

    /// <summary>A replica's data dir: <c>&lt;Work&gt;/&lt;name&gt;</c>.</summary>
    public string DataDir(string name) => Path.Combine(Work, name);

    /// <summary>Starts replica <paramref name="name"/> on <paramref name="database"/>, serving <paramref name="repository"/>, with extra MEDSERVE_* settings; returns once it is ready.</summary>
    public async Task<ServerProcess> StartAsync(string name, string repository, string database, IReadOnlyDictionary<string, string>? settings = null)
    {
        var (http, grpc) = (ServerProcess.FreePort(), ServerProcess.FreePort());
        var environment = new Dictionary<string, string>
        {
            ["MEDSERVE_PROVISION_SAMPLES"] = "false",
            ["MEDSERVE_STORE__PROVIDER"] = "postgres",
            ["MEDSERVE_STORE__CONNECTIONSTRING"] = database,
            ["MEDSERVE_ENCRYPTION__MASTERKEYS"] = _masterKeys,
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            environment[key] = value;
        }

        var server = ServerProcess.Start(Work, http, ["serve", "--http-port", $"{http}", "--grpc-port", $"{grpc}", "--data-dir", DataDir(name), "--model-repository", repository], environment);
        _servers.Add(server);
        await server.WaitReadyAsync();
        return server;
    }

    /// <summary>The admin key the first replica printed into its data dir (the others share it through the database).</summary>
    public string AdminKey(string name) => File.ReadAllText(Path.Combine(DataDir(name), "admin.key")).Trim();

    public static HttpClient Client(ServerProcess server, string key)
    {
        var client = new HttpClient { BaseAddress = server.Client.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    public static StringContent Json(string json) => new(json, System.Text.Encoding.UTF8, "application/json");

    /// <summary>Polls <paramref name="condition"/> until it holds, failing after <paramref name="limit"/>; returns how long it took.</summary>
    public static async Task<TimeSpan> WithinAsync(TimeSpan limit, Func<Task<bool>> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(clock.Elapsed < limit, $"not within {limit.TotalSeconds} s");
            await Task.Delay(50);
        }

        return clock.Elapsed;
    }

    public void Dispose()
    {
        foreach (var server in _servers)
        {
            server.Dispose();
        }

        try
        {
            Directory.Delete(Work, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
