using MedServe.Compliance.Journal;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using MedServe.IntegrationTests.Support;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace MedServe.IntegrationTests;

/// <summary>
/// The audit trail is never silently lossy: a response leaves only once its record is durable, so
/// killing the server (SIGKILL, no shutdown code runs) under load loses no record of an answered
/// request. The executable is run as users run it, killed mid-load, restarted on the same data
/// dir, and the trail is checked with <c>medserve audit verify</c> and against every answered id.
/// </summary>
public sealed class AuditCrashTests(ITestOutputHelper log) : IDisposable
{
    private const int Loops = 16;
    private const int AnsweredTarget = 2_000;
    private static readonly TimeSpan MinimumLoad = TimeSpan.FromSeconds(1.5);
    private static readonly TimeSpan MaximumLoad = TimeSpan.FromSeconds(3);

    private static readonly string RiskBody =
        $$"""{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[{{string.Join(",", Enumerable.Range(1, 30).Select(i => ((i % 7) * 0.1 - 0.3).ToString("0.0###", CultureInfo.InvariantCulture)))}}]}]}""";

    private readonly string _root = Path.Combine(Path.GetTempPath(), "medserve-crash-" + Guid.NewGuid().ToString("N"));
    private readonly List<ServerProcess> _servers = [];

    private string DataDir => Path.Combine(_root, "data");

    public void Dispose()
    {
        foreach (var server in _servers)
        {
            server.Dispose();
        }

        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a temp folder.
        }
    }

    [Fact]
    public async Task Kill_9_under_load_loses_no_record_of_an_answered_request()
    {
        Directory.CreateDirectory(_root);

        // 1. Start, wait ready (the first start provisions the samples and writes the admin key).
        var first = await StartAsync();
        var firstClient = first.Client;
        var adminKey = (await File.ReadAllTextAsync(Path.Combine(DataDir, "admin.key"))).Trim();

        // 2. Load: concurrent loops of risk inferences; an id counts as answered only when a whole 200 response arrived.
        var answered = new ConcurrentBag<string>();
        var killed = 0;
        long started = 0;
        long inFlight = 0;
        long cutOff = 0;
        long refused = 0;
        var unexpected = new ConcurrentBag<string>();
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = Loops, PooledConnectionLifetime = Timeout.InfiniteTimeSpan };
        using var load = new HttpClient(handler) { BaseAddress = firstClient.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        load.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", adminKey);

        // A warm-up request proves the request is valid before the clock starts.
        using (var warm = await load.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody, Encoding.UTF8, "application/json")))
        {
            Assert.True(warm.StatusCode == HttpStatusCode.OK, $"warm-up inference: {(int)warm.StatusCode} {await warm.Content.ReadAsStringAsync()}");
            answered.Add(warm.Headers.GetValues("X-Request-Id").Single());
        }

        // Each loop keeps sending through the kill and stops at its first failure after it, so the
        // kill always lands on loops that are sending.
        var clock = Stopwatch.StartNew();
        var loops = Enumerable.Range(0, Loops).Select(loop => Task.Run(async () =>
        {
            while (true)
            {
                Interlocked.Increment(ref started);
                Interlocked.Increment(ref inFlight);
                try
                {
                    using var response = await load.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody, Encoding.UTF8, "application/json"));
                    var body = await response.Content.ReadAsStringAsync(); // the whole answer, or an exception
                    if (response.StatusCode == HttpStatusCode.OK && body.Contains("\"outputs\"", StringComparison.Ordinal))
                    {
                        answered.Add(response.Headers.GetValues("X-Request-Id").Single());
                    }
                    else
                    {
                        unexpected.Add($"{(int)response.StatusCode}: {body}");
                        return;
                    }
                }
                catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException)
                {
                    if (Volatile.Read(ref killed) == 0)
                    {
                        unexpected.Add("before the kill: " + e.Message);
                    }
                    else if (e is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError } && e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused })
                    {
                        Interlocked.Increment(ref refused); // sent after the kill: never reached a server
                    }
                    else
                    {
                        Interlocked.Increment(ref cutOff); // on a connection the kill closed: not answered
                    }

                    return;
                }
                finally
                {
                    Interlocked.Decrement(ref inFlight);
                }
            }
        })).ToArray();

        while (clock.Elapsed < MaximumLoad && unexpected.IsEmpty && !(answered.Count >= AnsweredTarget && clock.Elapsed >= MinimumLoad))
        {
            await Task.Delay(10);
        }

        // SIGKILL while the loops are still sending: no shutdown code, no flush.
        var inFlightAtKill = Interlocked.Read(ref inFlight);
        Volatile.Write(ref killed, 1);
        var killedAt = first.KillAsync();
        var loadDuration = clock.Elapsed;
        await killedAt;
        await Task.WhenAll(loops).WaitAsync(TimeSpan.FromSeconds(30));
        var answeredIds = answered.ToHashSet(StringComparer.Ordinal);
        Assert.Equal(answered.Count, answeredIds.Count); // ids are unique
        Assert.True(unexpected.IsEmpty, "unexpected answers or failures before the kill: " + string.Join(" | ", unexpected.Take(5)));
        Assert.NotEmpty(answeredIds);
        Assert.Equal(Interlocked.Read(ref started), answeredIds.Count - 1 + Interlocked.Read(ref cutOff) + Interlocked.Read(ref refused)); // every request accounted for

        // 3. Restart on the same data dir (new ports): the store reopens after a crash and the chain goes on.
        var second = await StartAsync();
        var secondClient = second.Client;
        secondClient.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", adminKey);
        string afterRestartId;
        using (var after = await secondClient.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody, Encoding.UTF8, "application/json")))
        {
            Assert.True(after.StatusCode == HttpStatusCode.OK, $"inference after the restart: {(int)after.StatusCode} {await after.Content.ReadAsStringAsync()}");
            afterRestartId = after.Headers.GetValues("X-Request-Id").Single();
        }

        await second.KillAsync();

        // 4. The user-facing check: `medserve audit verify` on the data dir.
        var (verifyExit, verifyOutput) = await ServerProcess.RunAsync(_root, "audit", "verify", "--data-dir", DataDir,
            "--public-key", Path.Combine(DataDir, "secrets", "audit-signing.pub.pem"));
        Assert.True(verifyExit == 0, $"audit verify exited {verifyExit}: {verifyOutput}");
        Assert.Contains("intact: ", verifyOutput);

        // Every answered id is in the trail, with its 200 outcome.
        var records = new Dictionary<string, (long Seq, string Action, string Outcome)>(StringComparer.Ordinal);
        long lastSeq = 0;
        long checkpoints = 0;
        foreach (var record in JournalVerifier.Read(Path.Combine(DataDir, "journal"), 1, int.MaxValue))
        {
            if (record.Entry.Kind == JournalKind.Checkpoint)
            {
                checkpoints++;
                continue;
            }

            lastSeq = record.Sequence;

            Assert.True(records.TryAdd(record.Entry.RequestId, (lastSeq, record.Entry.Action, record.Entry.Outcome)), $"request id {record.Entry.RequestId} recorded twice");
        }

        var verifiedCount = long.Parse(verifyOutput.Split("intact: ", 2)[1].Split(' ', 2)[0], CultureInfo.InvariantCulture);
        Assert.Equal(records.Count + checkpoints, verifiedCount);

        var missing = answeredIds.Where(id => !records.ContainsKey(id)).ToList();
        var preCrashRecords = records.Count - 1; // all but the one written after the restart
        var recordedUnanswered = preCrashRecords - answeredIds.Count;
        var requestsPerSecond = answeredIds.Count / loadDuration.TotalSeconds;
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"answered (whole 200 responses, incl. 1 warm-up): {answeredIds.Count}; requests sent: {Interlocked.Read(ref started) + 1}; in flight (client side) at the kill: {inFlightAtKill}; unanswered: cut off by the kill {Interlocked.Read(ref cutOff)}, refused after it {Interlocked.Read(ref refused)}"));
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"records in the log: {records.Count} (pre-crash {preCrashRecords}, after restart 1); recorded but unanswered (processed, answer lost in the kill): {recordedUnanswered}; missing answered ids: {missing.Count}"));
        log.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"load: {Loops} loops for {loadDuration.TotalSeconds:0.000} s, {requestsPerSecond:0} answered requests/s"));
        log.WriteLine("audit verify: " + verifyOutput.Trim());

        Assert.True(missing.Count == 0, $"{missing.Count} answered request ids are missing from the audit trail, e.g. {string.Join(", ", missing.Take(5))}");
        Assert.True(records.Count >= answeredIds.Count + 1, $"{records.Count} records for {answeredIds.Count} answered requests and 1 after the restart");
        foreach (var id in answeredIds)
        {
            Assert.Equal("200", records[id].Outcome);
        }

        // The chain continued after the crash: the restarted server's record follows every earlier one.
        Assert.True(records.TryGetValue(afterRestartId, out var afterRestart), "the inference after the restart has no record");
        Assert.Equal(lastSeq, afterRestart.Seq);
        Assert.Equal("200", afterRestart.Outcome);
        Assert.Contains("infer", afterRestart.Action, StringComparison.Ordinal);
    }

    private async Task<ServerProcess> StartAsync()
    {
        var httpPort = ServerProcess.FreePort();
        var server = ServerProcess.Start(_root, httpPort,
        [
            "serve",
            "--http-port", httpPort.ToString(CultureInfo.InvariantCulture),
            "--grpc-port", ServerProcess.FreePort().ToString(CultureInfo.InvariantCulture),
            "--data-dir", DataDir,
            "--model-repository", Path.Combine(DataDir, "models"),
        ]);
        _servers.Add(server);
        await server.WaitReadyAsync();
        return server;
    }
}
