using Microsoft.ML.OnnxRuntime;
using SessionOptions = Microsoft.ML.OnnxRuntime.SessionOptions;

namespace MedServe.Bench;

/// <summary>The memory floor: a bare process holding the sample models' sessions as MedServe creates them (two each for the small models, one for resnet18), after one run each.</summary>
internal static partial class SessionHolder
{
    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);

    public static int Run(string repository)
    {
        var sessions = new List<InferenceSession>();
        foreach (var (model, input, shape) in new[] { ("breast-cancer", "features", new long[] { 1, 30 }), ("breast-cancer", "features", new long[] { 1, 30 }), ("resnet18", "image", new long[] { 1, 3, 224, 224 }), ("risk", "input", new long[] { 1, 30 }), ("risk", "input", new long[] { 1, 30 }) })
        {
            var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = Environment.ProcessorCount, InterOpNumThreads = 1 };
            var session = new InferenceSession(Path.Combine(repository, model, "1", "model.onnx"), options);
            using var value = OrtValue.CreateTensorValueFromMemory(new float[shape.Aggregate(1L, (a, b) => a * b)], shape);
            using var results = session.Run(new RunOptions(), [input], [value], session.OutputNames);
            sessions.Add(session);
        }

        GC.Collect();
        MallocTrim(0); // as MedServe does after loading: the same footing
        Console.WriteLine($"hold: resident {Environment.WorkingSet / (1024 * 1024)} MiB with {sessions.Count} sessions");
        return 0;
    }
}
