using System.Diagnostics;

namespace MedServe.Tests.Support;

/// <summary>
/// A real Azure Blob endpoint for one test class: Azurite's blob server (npm azurite) on a free
/// loopback port, its data in a temp dir, killed on dispose. Each test names a container of its own.
/// </summary>
public sealed class TestAzurite : IAsyncDisposable
{
    /// <summary>Azurite's well-known development account (public, in Azure's documentation; not a secret).</summary>
    public const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private readonly string _root = Path.Combine(Path.GetTempPath(), "medserve-azurite-" + Guid.NewGuid().ToString("N")[..12]);
    private readonly List<string> _output = [];
    private Process? _process;

    private TestAzurite(int port) => Port = port;

    /// <summary>Null when azurite-blob is installed; otherwise how to enable the tests.</summary>
    public static string? SkipReason { get; } = Binary() is null
        ? "azurite-blob is not installed here: install it (npm install -g azurite@3.37.0; .ci/run does)"
        : null;

    public int Port { get; }

    public string ConnectionString =>
        $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AccountKey};BlobEndpoint=http://127.0.0.1:{Port}/devstoreaccount1;";

    /// <summary>A container name no other test uses.</summary>
    public static string NewContainerName() => "medserve-" + Guid.NewGuid().ToString("N")[..16];

    public static async Task<TestAzurite> StartAsync()
    {
        var azurite = new TestAzurite(LocalServices.FreePort());
        Directory.CreateDirectory(azurite._root);
        var start = new ProcessStartInfo(Binary()!,
            ["--blobHost", "127.0.0.1", "--blobPort", $"{azurite.Port}", "--location", azurite._root, "--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        azurite._process = Process.Start(start)!;
        azurite._process.OutputDataReceived += (_, e) => azurite.Keep(e.Data);
        azurite._process.ErrorDataReceived += (_, e) => azurite.Keep(e.Data);
        azurite._process.BeginOutputReadLine();
        azurite._process.BeginErrorReadLine();

        // Any HTTP answer (an unsigned request is refused) means it listens.
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            if (azurite._process.HasExited)
            {
                break;
            }

            try
            {
                using var response = await http.GetAsync($"http://127.0.0.1:{azurite.Port}/devstoreaccount1?comp=list");
                return azurite;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                await Task.Delay(50);
            }
        }

        var output = azurite.Output();
        await azurite.DisposeAsync();
        throw new InvalidOperationException($"azurite-blob did not answer on port {azurite.Port}: {output}");
    }

    /// <summary>SIGKILL: the store is gone at once, as in an outage.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
    }

    public ValueTask DisposeAsync()
    {
        Kill();
        _process?.Dispose();
        _process = null;
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }

        return ValueTask.CompletedTask;
    }

    private void Keep(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.Add(line);
            }
        }
    }

    private string Output()
    {
        lock (_output)
        {
            return string.Join('\n', _output);
        }
    }

    private static string? Binary() => LocalServices.Find("azurite-blob", "/usr/local/bin", "/usr/bin");
}

/// <summary>A test that needs azurite-blob (and PostgreSQL, when it says so), skipped with the reason where either cannot run.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class AzuriteFactAttribute : LocalServiceFactAttribute
{
    public AzuriteFactAttribute()
        : base(TestAzurite.SkipReason) => SkipUnlessAvailable();
}

/// <summary>One Azurite for a test class, started when a test first asks (never where the tests are skipped).</summary>
public sealed class AzuriteFixture : Xunit.IAsyncLifetime
{
    private readonly Lazy<Task<TestAzurite>> _server = new(TestAzurite.StartAsync);

    public Task<TestAzurite> Server => _server.Value;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_server.IsValueCreated)
        {
            await (await _server.Value).DisposeAsync();
        }
    }
}
