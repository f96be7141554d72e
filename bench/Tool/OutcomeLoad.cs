using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace MedServe.Bench;

/// <summary>
/// The cost of outcome ingestion: <c>predictions</c> risk inferences (8 at a time) each naming a
/// patient, then their outcomes posted in batches, first joined by request id, then (a second
/// label for each: conflicts, so every one is journaled again) by patient and time. Prints
/// outcomes/s for each join and the performance read that follows.
/// </summary>
internal static class OutcomeLoad
{
    public static async Task<int> RunAsync(Uri server, string key, int predictions, int batch)
    {
        using var client = new HttpClient { BaseAddress = server, Timeout = TimeSpan.FromMinutes(10) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var ids = new string[predictions];
        var input = string.Join(",", Enumerable.Range(0, 30).Select(i => (i % 7 / 10.0).ToString(CultureInfo.InvariantCulture)));
        var started = Stopwatch.GetTimestamp();
        await Parallel.ForAsync(0, predictions, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, token) =>
        {
            var body = $$"""{"parameters":{"patient_id":"BENCH-{{i}}"},"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[{{input}}]}]}""";
            using var response = await client.PostAsync("/v2/models/risk/infer", new StringContent(body, Encoding.UTF8, "application/json"), token);
            response.EnsureSuccessStatusCode();
            ids[i] = response.Headers.GetValues("X-Request-Id").First();
        });
        Console.WriteLine($"inferences: {predictions} in {Stopwatch.GetElapsedTime(started).TotalSeconds:F1} s");

        var observed = DateTimeOffset.UtcNow.AddMinutes(1).ToString("O", CultureInfo.InvariantCulture);
        await Post(client, "by request id", predictions, batch, i => new { request_id = ids[i], label = i % 2 });
        await Post(client, "by patient and time", predictions, batch, i => new { model = "risk", patient_id = $"BENCH-{i}", observed_at = observed, label = 1 - (i % 2) });

        started = Stopwatch.GetTimestamp();
        using var performance = await client.GetAsync("/v1/models/risk/performance");
        performance.EnsureSuccessStatusCode();
        Console.WriteLine($"performance over {predictions} outcomes: {Stopwatch.GetElapsedTime(started).TotalMilliseconds:F0} ms");
        return 0;
    }

    private static async Task Post(HttpClient client, string join, int count, int batch, Func<int, object> outcome)
    {
        var started = Stopwatch.GetTimestamp();
        var matched = 0;
        for (var from = 0; from < count; from += batch)
        {
            var records = Enumerable.Range(from, Math.Min(batch, count - from)).Select(outcome).ToArray();
            using var response = await client.PostAsync("/v1/outcomes", new StringContent(JsonSerializer.Serialize(records), Encoding.UTF8, "application/json"));
            response.EnsureSuccessStatusCode();
            using var counts = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            matched += counts.RootElement.GetProperty("matched").GetInt32();
        }

        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        Console.WriteLine($"outcomes {join}: {count} ({matched} matched) in {seconds:F2} s = {count / seconds:F0} outcomes/s, batches of {batch}");
    }
}
