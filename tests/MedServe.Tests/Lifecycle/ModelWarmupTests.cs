using MedServe.Inference;
using MedServe.Lifecycle;
using MedServe.Onnx;
using MedServe.Repository;
using MedServe.Statistics;
using MedServe.Tensors;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace MedServe.Tests.Lifecycle;

/// <summary>Triton's model_warmup: read from config.pbtxt, run at load on real ONNX Runtime sessions, and a failure keeps the version out of serving.</summary>
public sealed class ModelWarmupTests : IAsyncLifetime
{
    private static readonly string Risk = Path.Combine(AppContext.BaseDirectory, "samples", "risk.onnx");
    private readonly string _root = Path.Combine(Path.GetTempPath(), "medserve-warmup-" + Guid.NewGuid().ToString("N"));
    private ModelManager _models = null!;

    public Task InitializeAsync()
    {
        Directory.CreateDirectory(_root);
        _models = new ModelManager(
            Options.Create(new ModelRepositoryOptions { Path = _root }), Options.Create(new MetricsOptions()),
            [new OnnxBackend(Options.Create(new OnnxOptions()), NullLogger<OnnxBackend>.Instance)], NullLogger<ModelManager>.Instance, TimeProvider.System);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _models.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public void Model_warmup_is_read_from_text_and_json_configs()
    {
        var config = ModelConfigReader.ParsePbtxt("""
            name: "risk"
            max_batch_size: 4
            model_warmup [
              { name: "zeros" batch_size: 2 count: 3 inputs { key: "input" value { data_type: TYPE_FP32 dims: [30] zero_data: true } } },
              { name: "file" batch_size: 1 inputs { key: "input" value { data_type: TYPE_FP32 dims: 30 input_data_file: "sample.raw" } } }
            ]
            """, "risk");
        Assert.Equal(2, config.Warmup.Count);
        Assert.Equal(("zeros", 2, 3), (config.Warmup[0].Name, config.Warmup[0].BatchSize, config.Warmup[0].Count));
        var input = Assert.Single(config.Warmup[0].Inputs);
        Assert.Equal(("input", TensorDataType.Fp32, WarmupData.Zero), (input.Name, input.DataType, input.Data));
        Assert.Equal([30L], input.Dims);
        Assert.Equal((WarmupData.File, "sample.raw", 1), (config.Warmup[1].Inputs[0].Data, config.Warmup[1].Inputs[0].File, config.Warmup[1].Count));

        var json = ModelConfigReader.ParseJson("""
            {"model_warmup":[{"name":"r","batch_size":1,"inputs":{"input":{"data_type":"TYPE_FP32","dims":[30],"random_data":true}}}]}
            """, "risk");
        Assert.Equal(WarmupData.Random, json.Warmup[0].Inputs[0].Data);
    }

    [Theory]
    [InlineData("input_data_file: \"../../secrets/key\"", "plain file name")]
    [InlineData("input_data_file: \"/etc/passwd\"", "plain file name")]
    [InlineData("zero_data: true random_data: true", "exactly one")]
    [InlineData("", "exactly one")]
    public void A_warmup_input_outside_its_grammar_is_refused(string data, string message)
    {
        var error = Assert.Throws<ModelConfigException>(() => ModelConfigReader.ParsePbtxt(
            $$"""model_warmup { name: "w" inputs { key: "input" value { data_type: TYPE_FP32 dims: 30 {{data}} } } }""", "risk"));
        Assert.Contains(message, error.Message);
        Assert.DoesNotContain("/etc", error.Message.Replace("'/'", "", StringComparison.Ordinal), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_version_that_answers_its_model_warmup_serves()
    {
        Provision(warmupFile: null);
        WriteConfig("""
            platform: "onnxruntime_onnx"
            max_batch_size: 4
            model_warmup [
              { name: "zeros" batch_size: 4 count: 2 inputs { key: "input" value { data_type: TYPE_FP32 dims: 30 zero_data: true } } },
              { name: "random" batch_size: 1 inputs { key: "input" value { data_type: TYPE_FP32 dims: 30 random_data: true } } },
              { name: "file" batch_size: 2 inputs { key: "input" value { data_type: TYPE_FP32 dims: 30 input_data_file: "one.raw" } } }
            ]
            """);
        File.WriteAllBytes(Path.Combine(_root, "risk", "warmup", "one.raw"), new byte[30 * 4]);

        await _models.LoadAsync("risk", null);

        var version = _models.Find("risk", "1");
        Assert.True(version.IsReady, version.Reason);
        Assert.Equal(4, version.Statistics.Success.Count); // 2 + 1 + 1 warm-up requests, as many as the config asks
    }

    [Fact]
    public async Task A_version_that_fails_its_model_warmup_does_not_serve_and_the_index_says_why()
    {
        Provision(warmupFile: "short.raw");
        WriteConfig("""
            platform: "onnxruntime_onnx"
            max_batch_size: 4
            model_warmup { name: "bad-file" batch_size: 1 inputs { key: "input" value { data_type: TYPE_FP32 dims: 30 input_data_file: "short.raw" } } }
            """);

        await Assert.ThrowsAsync<InferenceException>(() => _models.LoadAsync("risk", null));

        var entry = Assert.Single(_models.Index(readyOnly: false), e => e.Name == "risk");
        Assert.Contains("bad-file", entry.Reason);
        Assert.Contains("holds 7 bytes", entry.Reason);
        using var request = new InferenceRequest();
        request.Inputs.Add(new InputTensor("input", TensorDataType.Fp32, [1, 30], new byte[120]));
        await Assert.ThrowsAsync<InferenceException>(async () => await _models.InferAsync("risk", null, request, CancellationToken.None));
    }

    private void Provision(string? warmupFile)
    {
        Directory.CreateDirectory(Path.Combine(_root, "risk", "1"));
        Directory.CreateDirectory(Path.Combine(_root, "risk", "warmup"));
        File.Copy(Risk, Path.Combine(_root, "risk", "1", "model.onnx"));
        if (warmupFile is not null)
        {
            File.WriteAllBytes(Path.Combine(_root, "risk", "warmup", warmupFile), new byte[7]);
        }
    }

    private void WriteConfig(string text) => File.WriteAllText(Path.Combine(_root, "risk", "config.pbtxt"), text);
}
