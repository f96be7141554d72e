using System.Diagnostics;
using System.Security.Cryptography;
using MedServe.Compliance.Encryption;
using MedServe.Compliance.Journal;
using MedServe.Compliance.Predictions;
using MedServe.Inference;
using MedServe.Predictions;
using MedServe.Tensors;

namespace MedServe.Bench;

/// <summary>
/// What each step of journaling one risk inference costs on one core, in microseconds: laying out
/// the payload, encrypting it, encoding the record, and projecting it into the prediction store.
/// A profile of the parts, in-process, free of the HTTP stack's noise.
/// </summary>
internal static class RecordCost
{
    public static async Task<int> RunAsync(string folder, int count)
    {
        var inputs = new List<InputTensor> { new("input", TensorDataType.Fp32, [1, 30], RandomNumberGenerator.GetBytes(120)) };
        var outputs = new List<OutputTensor> { new("output", TensorDataType.Fp32, [1, 1], RandomNumberGenerator.GetBytes(4)) };
        var envelopes = new EnvelopeEncryption(new MasterKeyRing([("k1", RandomNumberGenerator.GetBytes(32))]));
        var payload = PredictionPayload.Encode(inputs, outputs, 65536);
        var requestId = "0123456789ab-1f2e3"u8.ToArray();
        var encrypted = envelopes.Encrypt(payload, requestId);
        var entry = new JournalEntry(DateTimeOffset.UtcNow, JournalKind.Inference, "key:admin", "POST /v2/models/{model}/infer", "risk/1", "200", "0123456789ab-1f2e3", "127.0.0.1", "")
        {
            Model = "risk", Version = "1", LatencyMicroseconds = 250, Payload = encrypted,
        };

        Time("payload layout (PredictionPayload.Encode)", count, () => PredictionPayload.Encode(inputs, outputs, 65536));
        Time("envelope encryption, a data key each (Encrypt)", count, () => envelopes.Encrypt(payload, requestId));
        Time("envelope encryption, thread's data key (EncryptRecord)", count, () => envelopes.EncryptRecord(payload, requestId));
        Time("record encoding (JournalFormat.EncodeBody)", count, () => JournalFormat.EncodeBody(entry));
        var body = JournalFormat.EncodeBody(entry);
        Time("record hash (SHA-256 of the body)", count, () => SHA256.HashData(body));

        Directory.CreateDirectory(folder);
        await using var store = await SqlitePredictionStore.OpenAsync(Path.Combine(folder, "predictions.db"));
        var records = Enumerable.Range(1, 2048).Select(i => new JournalRecord(i, entry, new byte[32], new byte[32])).ToList();
        var watch = Stopwatch.StartNew();
        var pages = Math.Max(1, count / records.Count);
        for (var page = 0; page < pages; page++)
        {
            await store.ApplyAsync(records.Select(r => r with { Sequence = r.Sequence + (page * 2048L) }).ToList(), [], (page + 1) * 2048L);
        }

        Console.WriteLine($"{"projection (SQLite, pages of 2048)",-52} {watch.Elapsed.TotalMicroseconds / (pages * 2048.0),8:F2} us/record");
        return 0;
    }

    private static void Time(string what, int count, Func<object> step)
    {
        for (var i = 0; i < 1000; i++)
        {
            step();
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        var watch = Stopwatch.StartNew();
        for (var i = 0; i < count; i++)
        {
            step();
        }

        Console.WriteLine($"{what,-52} {watch.Elapsed.TotalMicroseconds / count,8:F2} us/record {(GC.GetAllocatedBytesForCurrentThread() - before) / count,6} B allocated");
    }
}
