using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;

namespace MedServe.Bench;

/// <summary>
/// A soak: risk inferences at a fixed rate (open loop: each request leaves on its schedule,
/// whatever the others do) for the given time. Every 10 s it prints the window's p50 and p99
/// latency, errors, and the server's resident memory (VmRSS of the pid given).
/// </summary>
internal static class Soak
{
    public static async Task<int> RunAsync(Uri server, string key, int pid, double rate, double seconds)
    {
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = 256, PooledConnectionLifetime = TimeSpan.FromMinutes(30) };
        using var client = new HttpClient(handler) { BaseAddress = server, Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var body = Encoding.UTF8.GetBytes($$"""{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[{{string.Join(",", Enumerable.Range(0, 30).Select(i => (i % 7 / 10.0).ToString(CultureInfo.InvariantCulture)))}}]}]}""");
        var latencies = new List<double>();
        var errors = 0;
        var start = Stopwatch.GetTimestamp();
        var interval = Stopwatch.Frequency / rate;
        var next = 10.0;
        var sent = 0L;
        var inFlight = new List<Task>();
        Console.WriteLine("t_s,requests,p50_ms,p99_ms,errors,rss_mib");
        while (true)
        {
            var elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
            if (elapsed >= seconds)
            {
                break;
            }

            // Send every request whose time has come.
            var due = (long)(elapsed * rate);
            for (; sent < due; sent++)
            {
                inFlight.Add(SendAsync());
            }

            if (elapsed >= next)
            {
                double[] window;
                int windowErrors;
                lock (latencies)
                {
                    window = [.. latencies.Order()];
                    latencies.Clear();
                    windowErrors = errors;
                    errors = 0;
                }

                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{next:0},{window.Length},{Percentile(window, 0.5):0.00},{Percentile(window, 0.99):0.00},{windowErrors},{Rss(pid):0.0}"));
                next += 10;
                inFlight.RemoveAll(t => t.IsCompleted);
            }

            await Task.Delay(1);
        }

        await Task.WhenAll(inFlight);
        return 0;

        async Task SendAsync()
        {
            var begin = Stopwatch.GetTimestamp();
            try
            {
                using var content = new ByteArrayContent(body);
                content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                using var response = await client.PostAsync("/v2/models/risk/infer", content);
                lock (latencies)
                {
                    latencies.Add(Stopwatch.GetElapsedTime(begin).TotalMilliseconds);
                    errors += response.IsSuccessStatusCode ? 0 : 1;
                }
            }
            catch (HttpRequestException)
            {
                lock (latencies)
                {
                    errors++;
                }
            }
        }
    }

    private static double Percentile(double[] sorted, double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))];

    private static double Rss(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
            }
        }

        return double.NaN;
    }
}
