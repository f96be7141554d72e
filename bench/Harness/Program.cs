// The in-process limit: the same ONNX files run straight through ONNX Runtime, one request at a
// time on one session (as MedServe's single instance does), with the session settings MedServe
// uses by default. Usage: MedServe.Bench <model repository> [seconds per model]
using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;

var repository = args.Length > 0 ? args[0] : ".medserve/models";
var seconds = args.Length > 1 ? double.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 10;

Measure("risk", "input", "output", [1, 30], 0.1f);
Measure("resnet18", "image", "embedding", [1, 3, 224, 224], 0.5f);

void Measure(string model, string input, string output, long[] shape, float fill)
{
    using var options = new SessionOptions
    {
        GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        IntraOpNumThreads = Environment.ProcessorCount,
        InterOpNumThreads = 1,
    };
    using var session = new InferenceSession(Path.Combine(repository, model, "1", "model.onnx"), options);
    var data = new float[shape.Aggregate(1L, (a, b) => a * b)];
    Array.Fill(data, fill);
    using var value = OrtValue.CreateTensorValueFromMemory(data, shape);
    using var run = new RunOptions();
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
    Console.WriteLine($"{model}: {latencies.Count / seconds:F0} runs/s, p50 {P(0.5):F3} ms, p99 {P(0.99):F3} ms");
}
