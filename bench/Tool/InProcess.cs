using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using SessionOptions = Microsoft.ML.OnnxRuntime.SessionOptions;

namespace MedServe.Bench;

/// <summary>
/// The compute limit: the same ONNX files straight through ONNX Runtime, one session, the
/// session settings MedServe uses by default, one run at a time, at several batch sizes.
/// </summary>
internal static class InProcess
{
    public static int Run(string repository, double seconds)
    {
        foreach (var batch in new[] { 1, 8, 64 })
        {
            Measure(repository, "risk", "input", "output", [batch, 30], seconds);
        }

        foreach (var batch in new[] { 1, 4, 8, 16 })
        {
            Measure(repository, "resnet18", "image", "embedding", [batch, 3, 224, 224], seconds);
        }

        return 0;
    }

    private static void Measure(string repository, string model, string input, string output, long[] shape, double seconds)
    {
        using var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            IntraOpNumThreads = Environment.ProcessorCount,
            InterOpNumThreads = 1,
        };
        using var session = new InferenceSession(Path.Combine(repository, model, "1", "model.onnx"), options);
        var data = new float[shape.Aggregate(1L, (a, b) => a * b)];
        var random = new Random(1);
        for (var i = 0; i < data.Length; i++)
        {
            data[i] = (float)random.NextDouble();
        }

        using var value = OrtValue.CreateTensorValueFromMemory(data, shape);
        using var run = new RunOptions();
        for (var i = 0; i < 3; i++)
        {
            using var warm = session.Run(run, [input], [value], [output]);
        }

        var latencies = new List<double>();
        var until = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < until)
        {
            var start = Stopwatch.GetTimestamp();
            using var results = session.Run(run, [input], [value], [output]);
            latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }

        latencies.Sort();
        double P(double q) => latencies[(int)Math.Min(latencies.Count - 1, q * latencies.Count)];
        var runs = latencies.Count / seconds;
        Console.WriteLine($"inproc {model} batch {shape[0]}: {runs:F1} runs/s = {runs * shape[0]:F1} items/s, p50 {P(0.5):F3} ms, p99 {P(0.99):F3} ms");
    }
}
