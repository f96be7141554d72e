using System.Diagnostics;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Grpc.Net.Client;
using MedServe.Grpc.Protocol;

namespace MedServe.Bench;

/// <summary>A closed-loop gRPC load: <c>connections</c> callers each send ModelInfer (raw contents) back to back.</summary>
internal static class GrpcLoad
{
    public static async Task<int> RunAsync(string address, string model, int connections, double seconds)
    {
        var request = model == "resnet18" ? Request("resnet18", "image", [1, 3, 224, 224]) : Request("risk", "input", [1, 30]);

        // One HTTP/2 connection per caller, as separate clients would have.
        var channels = Enumerable.Range(0, connections).Select(_ => GrpcChannel.ForAddress(address)).ToList();
        var latencies = new List<double>[connections];
        var errors = 0;
        var stop = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
        var warmUntil = Stopwatch.GetTimestamp() + Stopwatch.Frequency / 2;
        await Task.WhenAll(Enumerable.Range(0, connections).Select(async c =>
        {
            var client = new GRPCInferenceService.GRPCInferenceServiceClient(channels[c]);
            var mine = latencies[c] = [];
            while (Stopwatch.GetTimestamp() < stop)
            {
                var start = Stopwatch.GetTimestamp();
                try
                {
                    await client.ModelInferAsync(request);
                    if (start > warmUntil)
                    {
                        mine.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                    }
                }
                catch (global::Grpc.Core.RpcException)
                {
                    Interlocked.Increment(ref errors);
                }
            }
        }));

        var all = latencies.SelectMany(l => l).Order().ToList();
        double P(double q) => all[(int)Math.Min(all.Count - 1, q * all.Count)];
        var measured = seconds - 0.5;
        Console.WriteLine($"grpc {model} c={connections}: {all.Count / measured:F1} req/s, p50 {P(0.5):F3} ms, p99 {P(0.99):F3} ms, errors {errors}");
        foreach (var channel in channels)
        {
            channel.Dispose();
        }

        return 0;
    }

    /// <summary>A gRPC message on the wire: a zero compression flag, a big-endian length, the protobuf bytes.</summary>
    public static int WriteBody(string model, string path)
    {
        var request = model == "resnet18" ? Request("resnet18", "image", [1, 3, 224, 224]) : Request("risk", "input", [1, 30]);
        var message = request.ToByteArray();
        var frame = new byte[5 + message.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(1), message.Length);
        message.CopyTo(frame, 5);
        File.WriteAllBytes(path, frame);
        return 0;
    }

    /// <summary>h2load's log has one line per request: start time, status, elapsed microseconds.</summary>
    public static int Percentiles(string log)
    {
        var micros = File.ReadLines(log).Select(line => line.Split('\t')).Where(f => f.Length >= 3 && f[1] == "200")
            .Select(f => double.Parse(f[2], System.Globalization.CultureInfo.InvariantCulture)).Order().ToList();
        double P(double q) => micros.Count == 0 ? double.NaN : micros[(int)Math.Min(micros.Count - 1, q * micros.Count)] / 1000;
        Console.WriteLine($"p50 {P(0.5):F3} ms, p99 {P(0.99):F3} ms");
        return 0;
    }

    private static ModelInferRequest Request(string model, string input, long[] shape)
    {
        var values = new float[shape.Aggregate(1L, (a, b) => a * b)];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = (i % 7) * 0.1f - 0.3f;
        }

        var request = new ModelInferRequest { ModelName = model };
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = input, Datatype = "FP32", Shape = { shape } });
        request.RawInputContents.Add(ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan())));
        return request;
    }
}
