using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using MedServe.Compliance.Journal;
using MedServe.IntegrationTests.Support;

namespace MedServe.IntegrationTests;

/// <summary>
/// Two replicas behind nginx and behind HAProxy (Debian's, started here on free ports with the
/// directives of deploy/): a bounded load, one replica SIGKILLed mid-load, then the other drained
/// with SIGTERM. Counted: failed client requests (goal 0, retries on) and answered requests whose
/// journal record is in neither replica's journal (must be 0).
/// </summary>
public sealed class FailoverTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private static readonly string RiskBody = $$"""{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[{{string.Join(",", Enumerable.Repeat("0.25", 30))}}]}]}""";
    private static readonly string Root = RepositoryRoot.Path;
    private readonly string _work = Path.Combine(Path.GetTempPath(), "medserve-failover-" + Guid.NewGuid().ToString("N"));
    private readonly List<IDisposable> _processes = [];

    [Theory]
    [InlineData("nginx")]
    [InlineData("haproxy")]
    public async Task A_replica_killed_mid_load_loses_no_request_and_no_journal_record_and_one_stopped_drains(string balancer)
    {
        var repository = Path.Combine(_work, "models");
        MedServe.Samples.SampleModels.ProvisionRisk(repository);
        var (first, firstData) = await StartReplicaAsync("a", repository);
        var (second, secondData) = await StartReplicaAsync("b", repository);
        var port = ServerProcess.FreePort();
        StartBalancer(balancer, port, [Port(first), Port(second)]);
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
        await WaitAsync(async () => (await client.GetAsync("/v2/health/ready")).IsSuccessStatusCode);

        // 1. SIGKILL mid-load.
        var (answered, failed) = await LoadAsync(client, TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(1.5), () => first.KillAsync());
        second.Dispose();
        var journaled = JournalIds(firstData).Concat(JournalIds(secondData)).ToHashSet(StringComparer.Ordinal);
        var lost = answered.Count(id => !journaled.Contains(id));
        output.WriteLine($"{balancer}, SIGKILL: {answered.Count} answered, {failed} failed, {lost} answered without a journal record");
        Assert.Equal(0, lost);
        Assert.Equal(0, failed);
        Assert.True(answered.Count > 100);

        // 2. A fresh pair; one stopped with SIGTERM drains: readiness goes false, its in-flight requests finish.
        var (third, _) = await StartReplicaAsync("c", repository);
        var (fourth, _) = await StartReplicaAsync("d", repository);
        var drainPort = ServerProcess.FreePort();
        StartBalancer(balancer, drainPort, [Port(third), Port(fourth)]);
        using var drainClient = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{drainPort}"), Timeout = TimeSpan.FromSeconds(30) };
        await WaitAsync(async () => (await drainClient.GetAsync("/v2/health/ready")).IsSuccessStatusCode);
        var (drained, drainFailed) = await LoadAsync(drainClient, TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(1.5), async () =>
        {
            using var term = Process.Start("kill", ["-TERM", third.Process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            await term.WaitForExitAsync();
        });
        await third.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        output.WriteLine($"{balancer}, SIGTERM: {drained.Count} answered, {drainFailed} failed; the stopped replica exited with {third.Process.ExitCode}");
        Assert.Equal(0, drainFailed);
        Assert.Equal(0, third.Process.ExitCode);
    }

    private async Task<(ServerProcess Server, string DataDir)> StartReplicaAsync(string name, string repository)
    {
        var data = Path.Combine(_work, name);
        var (http, grpc) = (ServerProcess.FreePort(), ServerProcess.FreePort());
        var server = ServerProcess.Start(_work, http, ["serve", "--http-port", $"{http}", "--grpc-port", $"{grpc}", "--data-dir", data, "--model-repository", repository, "--no-auth"],
            new Dictionary<string, string> { ["MEDSERVE_PROVISION_SAMPLES"] = "false" });
        _processes.Add(server);
        await server.WaitReadyAsync();
        return (server, data);
    }

    private static int Port(ServerProcess server) => server.Client.BaseAddress!.Port;

    /// <summary>Four clients for <paramref name="duration"/>; <paramref name="fault"/> at <paramref name="at"/>. Returns the answered requests' ids and the failures.</summary>
    private static async Task<(List<string> Answered, int Failed)> LoadAsync(HttpClient client, TimeSpan duration, TimeSpan at, Func<Task> fault)
    {
        var answered = new ConcurrentBag<string>();
        var failed = 0;
        var until = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var workers = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            while (Stopwatch.GetTimestamp() < until)
            {
                try
                {
                    using var response = await client.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody, Encoding.UTF8, "application/json"));
                    if (response.StatusCode == HttpStatusCode.OK)
                    {
                        answered.Add(response.Headers.GetValues("X-Request-Id").Single());
                    }
                    else
                    {
                        Interlocked.Increment(ref failed);
                    }
                }
                catch (HttpRequestException)
                {
                    Interlocked.Increment(ref failed);
                }
            }
        })).ToList();
        await Task.Delay(at);
        await fault();
        await Task.WhenAll(workers);
        return ([.. answered], failed);
    }

    private static IEnumerable<string> JournalIds(string dataDir) =>
        JournalVerifier.Read(Path.Combine(dataDir, "journal"), 1, int.MaxValue).Where(r => r.Entry.Kind == JournalKind.Inference).Select(r => r.Entry.RequestId);

    private void StartBalancer(string balancer, int port, int[] replicas)
    {
        var folder = Path.Combine(_work, $"{balancer}-{port}");
        Directory.CreateDirectory(folder);
        ProcessStartInfo start;
        if (balancer == "nginx")
        {
            File.WriteAllText(Path.Combine(folder, "nginx.conf"), $$"""
                daemon off;
                user root;
                worker_processes 1;
                pid {{folder}}/nginx.pid;
                error_log {{folder}}/error.log warn;
                events { worker_connections 1024; }
                http {
                    access_log off;
                    client_body_temp_path {{folder}}/body;
                    proxy_temp_path {{folder}}/proxy;
                    fastcgi_temp_path {{folder}}/fastcgi;
                    uwsgi_temp_path {{folder}}/uwsgi;
                    scgi_temp_path {{folder}}/scgi;
                    upstream medserve_http {
                        {{string.Join("\n", replicas.Select(r => $"server 127.0.0.1:{r} max_fails=1 fail_timeout=5s;"))}}
                        keepalive 16;
                    }
                    server {
                        listen 127.0.0.1:{{port}};
                        location / {
                            proxy_pass http://medserve_http;
                            include {{Root}}/deploy/nginx/medserve-proxy.conf;
                        }
                    }
                }
                """);
            start = new ProcessStartInfo("nginx", ["-p", folder, "-c", Path.Combine(folder, "nginx.conf")]);
        }
        else
        {
            // The deploy file's defaults (timeouts, retries, retry-on, body buffering), with loopback frontends and backends.
            var deployed = File.ReadAllLines(Path.Combine(Root, "deploy", "haproxy", "haproxy.cfg"));
            var defaults = deployed.SkipWhile(l => !l.StartsWith("defaults", StringComparison.Ordinal)).TakeWhile(l => !l.StartsWith("frontend", StringComparison.Ordinal));
            File.WriteAllText(Path.Combine(folder, "haproxy.cfg"), $"""
                global
                    maxconn 1024
                {string.Join("\n", defaults)}
                frontend rest
                    bind 127.0.0.1:{port}
                    default_backend medserve_http
                backend medserve_http
                    balance roundrobin
                    option httpchk GET /v2/health/ready
                    http-check expect status 200
                    default-server check inter 200ms fall 1 rise 2
                {string.Join("\n", replicas.Select((r, i) => $"    server r{i} 127.0.0.1:{r}"))}

                """); // HAProxy refuses a file whose last line has no LF
            start = new ProcessStartInfo("haproxy", ["-f", Path.Combine(folder, "haproxy.cfg"), "-db"]);
        }

        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        var process = Process.Start(start) ?? throw new InvalidOperationException($"{balancer} did not start: .ci/run installs Debian's nginx and haproxy");
        _processes.Add(new Killer(process));
    }

    private static async Task WaitAsync(Func<Task<bool>> condition)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            try
            {
                if (await condition())
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not up yet.
            }

            await Task.Delay(100, deadline.Token);
        }
    }

    public void Dispose()
    {
        foreach (var process in Enumerable.Reverse(_processes))
        {
            process.Dispose();
        }

        if (Directory.Exists(_work))
        {
            Directory.Delete(_work, recursive: true);
        }
    }

    private sealed class Killer(Process process) : IDisposable
    {
        public void Dispose()
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                    process.WaitForExit(10_000);
                }
            }
            catch (InvalidOperationException)
            {
                // Already gone.
            }

            process.Dispose();
        }
    }
}
