using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace MedServe.Tests.Support;

/// <summary>
/// A real Redis for one test: Debian's redis-server on a free loopback port in a temp dir, with
/// nothing persisted; the test may stop it (an outage) and start it again on the same port.
/// </summary>
public sealed class TestRedis : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "medserve-redis-" + Guid.NewGuid().ToString("N")[..12]);
    private Process? _process;

    private TestRedis(int port) => Port = port;

    /// <summary>Null when redis-server is installed; otherwise how to enable the tests.</summary>
    public static string? SkipReason { get; } = Binary() is null
        ? "redis-server is not installed here: install it (apt-get install redis-server; .ci/run does)"
        : null;

    public int Port { get; }

    /// <summary>StackExchange.Redis's form.</summary>
    public string ConnectionString => $"127.0.0.1:{Port}";

    public static async Task<TestRedis> StartAsync()
    {
        var redis = new TestRedis(LocalServices.FreePort());
        Directory.CreateDirectory(redis._root);
        await redis.RestartAsync();
        return redis;
    }

    /// <summary>Starts it (again) on its port and waits until it answers.</summary>
    public async Task RestartAsync()
    {
        var start = new ProcessStartInfo(Binary()!, ["--port", $"{Port}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", _root, "--protected-mode", "no"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        _process = Process.Start(start)!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        for (var attempt = 0; attempt < 200; attempt++)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, Port);
                var stream = client.GetStream();
                await stream.WriteAsync("PING\r\n"u8.ToArray());
                var buffer = new byte[16];
                if (await stream.ReadAsync(buffer) > 0 && buffer[0] == (byte)'+')
                {
                    return;
                }
            }
            catch (SocketException)
            {
            }

            await Task.Delay(25);
        }

        throw new InvalidOperationException($"redis-server did not answer on port {Port}");
    }

    /// <summary>SIGKILL: connections drop at once, as when a Redis pod dies.</summary>
    public void Kill()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill();
            _process.WaitForExit();
        }
    }

    public void Dispose()
    {
        Kill();
        _process?.Dispose();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static string? Binary() => LocalServices.Find("redis-server", "/usr/bin", "/usr/sbin");
}

/// <summary>A test that needs redis-server (and PostgreSQL, when it says so), skipped with the reason where either cannot run.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class RedisFactAttribute : LocalServiceFactAttribute
{
    public RedisFactAttribute()
        : base(TestRedis.SkipReason) => SkipUnlessAvailable();
}
