using Microsoft.ML.OnnxRuntime;
using SessionOptions = Microsoft.ML.OnnxRuntime.SessionOptions;

namespace MedServe.Bench;

/// <summary>The memory floor: a bare process holding the sample models' sessions, as MedServe creates them, after one run each.</summary>
internal static class SessionHolder
{
    public static int Run(string repository)
    {
        var sessions = new List<InferenceSession>();
        foreach (var (model, input, shape) in new[] { ("breast-cancer", "features", new long[] { 1, 30 }), ("resnet18", "image", new long[] { 1, 3, 224, 224 }), ("risk", "input", new long[] { 1, 30 }) })
        {
            var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = Environment.ProcessorCount, InterOpNumThreads = 1 };
            var session = new InferenceSession(Path.Combine(repository, model, "1", "model.onnx"), options);
            using var value = OrtValue.CreateTensorValueFromMemory(new float[shape.Aggregate(1L, (a, b) => a * b)], shape);
            using var results = session.Run(new RunOptions(), [input], [value], session.OutputNames);
            sessions.Add(session);
        }

        GC.Collect();
        Console.WriteLine($"hold: resident {Environment.WorkingSet / (1024 * 1024)} MiB with {sessions.Count} sessions");
        return 0;
    }
}
