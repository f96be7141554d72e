using System.Buffers.Binary;
using System.Security.Cryptography;
using MedServe.Inference;
using MedServe.Predictions;
using MedServe.Repository;
using MedServe.Tensors;

namespace MedServe.Tests.Predictions;

public sealed class PredictionPayloadTests
{
    [Fact]
    public void Inputs_and_outputs_round_trip_with_names_types_shapes_and_bytes()
    {
        var input = Floats(1.5f, -2f, 3.25f);
        var ids = new byte[] { 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0 };
        var text = new byte[] { 3, 0, 0, 0, (byte)'a', (byte)'b', (byte)'c' };
        var payload = PredictionPayload.Encode(
            [new InputTensor("input", TensorDataType.Fp32, [1, 3], input), new InputTensor("ids", TensorDataType.Int64, [2], ids), new InputTensor("note", TensorDataType.Bytes, [1], text)],
            [new OutputTensor("probabilities", TensorDataType.Fp32, [1, 2], Floats(0.25f, 0.75f))],
            maxInputBytes: 1024);

        var (inputs, outputs, summarised) = PredictionPayload.Decode(payload);

        Assert.False(summarised);
        Assert.Equal(["input", "ids", "note"], inputs.Select(t => t.Name));
        Assert.Equal([TensorDataType.Fp32, TensorDataType.Int64, TensorDataType.Bytes], inputs.Select(t => t.DataType));
        Assert.Equal([1L, 3], inputs[0].Shape);
        Assert.Equal(input, inputs[0].Data);
        Assert.Equal(ids, inputs[1].Data);
        Assert.Equal(text, inputs[2].Data);
        var output = Assert.Single(outputs);
        Assert.Equal(("probabilities", TensorDataType.Fp32), (output.Name, output.DataType));
        Assert.Equal(Floats(0.25f, 0.75f), output.Data);
    }

    [Fact]
    public void Inputs_over_the_cap_are_kept_as_their_digest_and_summary_and_the_outputs_in_full()
    {
        // Reference: numpy, x = (sin(arange(100)) * 10).astype(float32); x.min(), x.max(), x.mean(), x.std() in float64.
        var values = Enumerable.Range(0, 100).Select(i => (float)(Math.Sin(i) * 10)).ToArray();
        var data = Floats(values);
        var payload = PredictionPayload.Encode([new InputTensor("input", TensorDataType.Fp32, [1, 100], data)],
            [new OutputTensor("p", TensorDataType.Fp32, [1], Floats(0.5f))], maxInputBytes: 399);

        var (inputs, outputs, summarised) = PredictionPayload.Decode(payload);

        Assert.True(summarised);
        Assert.True(payload.Length < data.Length, $"{payload.Length} bytes: the elements were kept");
        var logged = Assert.Single(inputs);
        Assert.Null(logged.Data);
        Assert.Equal(SHA256.HashData(data), logged.Digest);
        Assert.Equal(100, logged.Summary!.Count);
        Assert.Equal(-9.99990177154541, logged.Summary.Min, 12);
        Assert.Equal(9.99911880493164, logged.Summary.Max, 12);
        Assert.Equal(0.03791945099830627, logged.Summary.Mean, 12);
        Assert.Equal(7.0718132640004825, logged.Summary.StdDev, 12);
        Assert.Equal(Floats(0.5f), Assert.Single(outputs).Data);
    }

    [Fact]
    public void Summaries_read_half_precision_and_count_bytes_elements()
    {
        // Reference: numpy float16 [0.5, -2.25, 3.0, 65504.0] as float64: mean 16376.3125, std 28363.883663568864.
        var half = new byte[8];
        float[] values = [0.5f, -2.25f, 3f, 65504f];
        for (var i = 0; i < 4; i++)
        {
            BinaryPrimitives.WriteHalfLittleEndian(half.AsSpan(i * 2), (Half)values[i]);
        }

        var summary = PredictionPayload.Summarise(TensorDataType.Fp16, half);
        Assert.Equal((4L, -2.25, 65504.0), (summary.Count, summary.Min, summary.Max));
        Assert.Equal(16376.3125, summary.Mean, 9);
        Assert.Equal(28363.883663568864, summary.StdDev, 9);

        var strings = PredictionPayload.Summarise(TensorDataType.Bytes, [1, 0, 0, 0, (byte)'x', 0, 0, 0, 0]);
        Assert.Equal(2, strings.Count);
        Assert.True(double.IsNaN(strings.Mean));
    }

    [Theory]
    [InlineData(new byte[] { })]
    [InlineData(new byte[] { 2, 0, 0, 0, 0, 0 })]
    [InlineData(new byte[] { 1, 0, 1, 0, 5, 0, (byte)'x' })]
    public void A_payload_that_does_not_parse_is_a_format_error_not_a_crash(byte[] payload) =>
        Assert.Throws<FormatException>(() => PredictionPayload.Decode(payload));

    [Fact]
    public void A_sample_rate_keeps_exactly_that_share_of_payloads_per_model()
    {
        var capture = new PredictionCapture();
        var quarter = Config("sampled", new JournalPolicy(null, 0.25));
        var all = Config("all", JournalPolicy.Default);
        var none = Config("none", new JournalPolicy(null, 0));
        using var request = new InferenceRequest();
        request.Inputs.Add(new InputTensor("input", TensorDataType.Fp32, [1], Floats(1f)));
        using var result = new InferenceResult([new OutputTensor("p", TensorDataType.Fp32, [1], Floats(0.5f))], null);

        var kept = Enumerable.Range(0, 100).Select(_ => capture.Payload(quarter, request, result)).ToList();
        Assert.Equal(25, kept.Count(p => p is not null));
        Assert.All(kept.Chunk(4), four => Assert.Single(four, p => p is not null));
        Assert.All(Enumerable.Range(0, 10), _ => Assert.NotNull(capture.Payload(all, request, result)));
        Assert.All(Enumerable.Range(0, 10), _ => Assert.Null(capture.Payload(none, request, result)));
    }

    [Fact]
    public void Only_the_subgroups_a_model_declares_are_kept_with_its_prediction()
    {
        var capture = new PredictionCapture();
        var config = new ModelConfig { Name = "m", Monitoring = new MonitoringSpec { Subgroups = ["sex", "age_band", "ward"] } };
        using var request = new InferenceRequest
        {
            Parameters = new()
            {
                ["sex"] = InferenceParameter.Of("F"),
                ["age_band"] = InferenceParameter.Of(60L),
                ["ward"] = InferenceParameter.Of(new string('x', 65)), // longer than a category: not kept
                ["note"] = InferenceParameter.Of("free text the model did not declare"),
                ["patient_id"] = InferenceParameter.Of("MRN-1"),
            },
        };
        request.Inputs.Add(new InputTensor("input", TensorDataType.Fp32, [1], Floats(1f)));
        using var result = new InferenceResult([new OutputTensor("p", TensorDataType.Fp32, [1], Floats(0.5f))], null);

        var decoded = PredictionPayload.Decode(capture.Payload(config, request, result));

        Assert.Equal(new Dictionary<string, string> { ["sex"] = "F", ["age_band"] = "60" }, decoded.Subgroups);
        Assert.Equal(0.5f, BitConverter.ToSingle(decoded.Outputs[0].Data));
        Assert.Empty(PredictionPayload.Decode(capture.Payload(Config("m", JournalPolicy.Default), request, result)).Subgroups);
    }

    [Fact]
    public void A_models_own_cap_overrides_the_server_default()
    {
        var capture = new PredictionCapture(defaultMaxInputBytes: 1 << 20);
        using var request = new InferenceRequest();
        request.Inputs.Add(new InputTensor("input", TensorDataType.Fp32, [4], Floats(1f, 2f, 3f, 4f)));
        using var result = new InferenceResult([], null);

        Assert.False(PredictionPayload.Decode(capture.Payload(Config("m", JournalPolicy.Default), request, result)).InputsSummarised);
        Assert.True(PredictionPayload.Decode(capture.Payload(Config("m", new JournalPolicy(8, 1)), request, result)).InputsSummarised);
        Assert.True(PredictionPayload.Decode(new PredictionCapture(8).Payload(Config("m", JournalPolicy.Default), request, result)).InputsSummarised);
    }

    [Fact]
    public void The_journal_block_of_a_model_config_is_read_and_checked()
    {
        var config = ModelConfigReader.ParsePbtxt("""
            name: "risk"
            journal { max_input_bytes: 4096 sample_rate: 0.1 }
            """, "risk");
        Assert.Equal(new JournalPolicy(4096, 0.1), config.Journal);
        Assert.Equal(JournalPolicy.Default, ModelConfigReader.ParsePbtxt("name: \"risk\"", "risk").Journal);

        Assert.Contains("sample_rate", Assert.Throws<ModelConfigException>(() => ModelConfigReader.ParsePbtxt("journal { sample_rate: 1.5 }", "m")).Message);
        Assert.Contains("max_input_bytes", Assert.Throws<ModelConfigException>(() => ModelConfigReader.ParsePbtxt("journal { max_input_bytes: -1 }", "m")).Message);
        Assert.Contains("unknown field 'keep'", Assert.Throws<ModelConfigException>(() => ModelConfigReader.ParsePbtxt("journal { keep: true }", "m")).Message);
        Assert.Equal(new JournalPolicy(null, 0.5), ModelConfigReader.ParseJson("""{"journal":{"sample_rate":0.5}}""", "m").Journal);
    }

    private static ModelConfig Config(string name, JournalPolicy policy) => new() { Name = name, Journal = policy };

    private static byte[] Floats(params float[] values)
    {
        var bytes = new byte[values.Length * 4];
        for (var i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), values[i]);
        }

        return bytes;
    }
}
