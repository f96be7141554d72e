using System.Diagnostics;
using System.Security.Cryptography;
using MedServe.Compliance.Journal;

namespace MedServe.Bench;

/// <summary>
/// The write path alone, in-process: N appenders each appending one record and waiting for it to be
/// durable, in a closed loop. The journal (segments, one write + fdatasync per batch) against the
/// candidate it was chosen over (SQLite, one multi-row INSERT per batch in one synchronous=FULL
/// transaction, the same records), alternating rounds in one run on the same disk. Journal records
/// carry a payload of the risk model's size (30 FP32 inputs and one output, envelope-encrypted: ~200 bytes).
/// </summary>
internal static class JournalLoad
{
    public static async Task<int> RunAsync(string folder, int appenders, double seconds, int rounds)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var payload = RandomNumberGenerator.GetBytes(200);
        for (var round = 1; round <= rounds; round++)
        {
            var journalFolder = Path.Combine(folder, $"journal-{round}");
            await using (var journal = InferenceJournal.Open(new JournalOptions { Folder = journalFolder }, key))
            {
                var (count, p50, p99) = await Measure(appenders, seconds, i => journal.AppendAsync(Entry(i) with { Payload = payload }));
                Console.WriteLine($"round {round} journal  appenders {appenders}: {count / seconds:F0} records/s durable, {journal.Commits / seconds:F0} batches/s, p50 {p50:F2} ms, p99 {p99:F2} ms");
            }

            await using (var store = SqliteBatchLog.Open(Path.Combine(folder, $"sqlite-{round}.db")))
            {
                var (count, p50, p99) = await Measure(appenders, seconds, i => store.AppendAsync(JournalFormat.EncodeBody(Entry(i) with { Payload = payload })));
                Console.WriteLine($"round {round} sqlite   appenders {appenders}: {count / seconds:F0} records/s durable, {store.Commits / seconds:F0} batches/s, p50 {p50:F2} ms, p99 {p99:F2} ms");
            }
        }

        return 0;
    }

    private static JournalEntry Entry(long i) =>
        new(DateTimeOffset.UtcNow, JournalKind.Inference, "key:bench", "POST /v2/models/{model}/infer", "risk/1", "200", "req-" + i, "127.0.0.1", "") { Model = "risk", Version = "1", LatencyMicroseconds = 250 };

    private static async Task<(long Count, double P50, double P99)> Measure(int appenders, double seconds, Func<long, Task> append)
    {
        long next = 0;
        var until = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
        var latencies = new List<double>[appenders];
        await Task.WhenAll(Enumerable.Range(0, appenders).Select(a => Task.Run(async () =>
        {
            var mine = latencies[a] = new List<double>(1 << 16);
            while (Stopwatch.GetTimestamp() < until)
            {
                var start = Stopwatch.GetTimestamp();
                await append(Interlocked.Increment(ref next));
                mine.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
        })));
        var all = latencies.SelectMany(l => l).Order().ToList();
        return (all.Count, all[all.Count / 2], all[(int)(all.Count * 0.99)]);
    }
}
