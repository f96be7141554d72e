using MedServe.Repository;
using MedServe.Tensors;

namespace MedServe.Tests.Repository;

public sealed class ModelConfigReaderTests
{
    internal const string TritonPbtxt = """
        # A Triton model configuration, as found in the wild.
        name: "densenet"   # must match the folder
        platform: "onnxruntime_" "onnx"
        max_batch_size: 8
        version_policy: { specific { versions: [ 1, 3 ] } }
        input [
          {
            name: "INPUT0"
            data_type: TYPE_FP32
            dims: [ 3, 224, 224 ]
          },
          {
            name: "mask"
            data_type: TYPE_BOOL
            dims: [ -1 ]
            optional: true
          }
        ]
        output {
          name: "probs"
          data_type: TYPE_FP32
          dims: [ 1000 ]
        }
        output: {
          name: "label"
          data_type: TYPE_STRING
          dims: 1
        }
        instance_group [
          { count: 2 kind: KIND_CPU },
          { name: "gpu" count: 1 kind: KIND_GPU gpus: [ 0, 1 ] }
        ]
        dynamic_batching {
          preferred_batch_size: [ 4, 8 ]
          max_queue_delay_microseconds: 100
          preserve_ordering: true
          priority_levels: 2
          default_priority_level: 1
          default_queue_policy {
            timeout_action: DELAY
            default_timeout_microseconds: 5000
            allow_timeout_override: true
            max_queue_size: 16
          }
          priority_queue_policy {
            key: 1
            value: { timeout_action: REJECT max_queue_size: 4 }
          }
          priority_queue_policy { key: 2 value { default_timeout_microseconds: 10 } }
        }
        parameters { key: "intra_op_thread_count" value: { string_value: "2" } }
        parameters: { key: "execution_mode" value { string_value: "0" } }
        default_model_filename: "densenet.onnx"
        optimization { execution_accelerators { gpu_execution_accelerator: [ { name: "tensorrt" } ] } }
        """;

    internal const string TritonJson = """
        {
          "name": "densenet",
          "platform": "onnxruntime_onnx",
          "max_batch_size": 8,
          "version_policy": { "specific": { "versions": ["1", 3] } },
          "input": [
            { "name": "INPUT0", "data_type": "TYPE_FP32", "format": "FORMAT_NONE", "dims": ["3", "224", "224"] },
            { "name": "mask", "data_type": "TYPE_BOOL", "dims": [-1], "optional": true }
          ],
          "output": [
            { "name": "probs", "data_type": "TYPE_FP32", "dims": [1000], "label_filename": "" },
            { "name": "label", "data_type": "TYPE_STRING", "dims": [1] }
          ],
          "instance_group": [
            { "count": 2, "kind": "KIND_CPU" },
            { "name": "gpu", "count": 1, "kind": "KIND_GPU", "gpus": [0, 1] }
          ],
          "dynamic_batching": {
            "preferred_batch_size": [4, 8],
            "max_queue_delay_microseconds": "100",
            "preserve_ordering": true,
            "priority_levels": "2",
            "default_priority_level": "1",
            "default_queue_policy": {
              "timeout_action": "DELAY",
              "default_timeout_microseconds": "5000",
              "allow_timeout_override": true,
              "max_queue_size": 16
            },
            "priority_queue_policy": {
              "1": { "timeout_action": "REJECT", "max_queue_size": 4 },
              "2": { "default_timeout_microseconds": "10" }
            }
          },
          "parameters": {
            "intra_op_thread_count": { "string_value": "2" },
            "execution_mode": { "string_value": "0" }
          },
          "default_model_filename": "densenet.onnx",
          "optimization": { "priority": "PRIORITY_DEFAULT" }
        }
        """;

    /// <summary>What both <see cref="TritonPbtxt"/> and <see cref="TritonJson"/> say.</summary>
    internal static void AssertIsTheDensenetConfig(ModelConfig config)
    {
        Assert.Equal("densenet", config.Name);
        Assert.Equal("onnxruntime_onnx", config.Platform);
        Assert.Equal("", config.Backend);
        Assert.Equal(8, config.MaxBatchSize);
        Assert.Equal(VersionPolicyKind.Specific, config.VersionPolicy.Kind);
        Assert.Equal([1L, 3L], config.VersionPolicy.Versions);

        Assert.Equal(2, config.Inputs.Count);
        Assert.Equal("INPUT0", config.Inputs[0].Name);
        Assert.Equal(TensorDataType.Fp32, config.Inputs[0].DataType);
        Assert.Equal([3L, 224L, 224L], config.Inputs[0].Dims);
        Assert.False(config.Inputs[0].Optional);
        Assert.Equal("mask", config.Inputs[1].Name);
        Assert.Equal(TensorDataType.Bool, config.Inputs[1].DataType);
        Assert.Equal([-1L], config.Inputs[1].Dims);
        Assert.True(config.Inputs[1].Optional);

        Assert.Equal(["probs", "label"], config.Outputs.Select(o => o.Name));
        Assert.Equal([TensorDataType.Fp32, TensorDataType.Bytes], config.Outputs.Select(o => o.DataType));
        Assert.Equal([1000L], config.Outputs[0].Dims);
        Assert.Equal([1L], config.Outputs[1].Dims);

        Assert.Equal(2, config.InstanceGroups.Count);
        Assert.Equal(new InstanceGroupConfig("", InstanceKind.Cpu, 2), config.InstanceGroups[0] with { Gpus = [] });
        Assert.Empty(config.InstanceGroups[0].Gpus);
        Assert.Equal("gpu", config.InstanceGroups[1].Name);
        Assert.Equal(InstanceKind.Gpu, config.InstanceGroups[1].Kind);
        Assert.Equal(1, config.InstanceGroups[1].Count);
        Assert.Equal([0, 1], config.InstanceGroups[1].Gpus);
        Assert.Equal(3, config.InstanceCount);
        Assert.True(config.WantsGpu);

        var batching = Assert.IsType<DynamicBatchingConfig>(config.DynamicBatching);
        Assert.Equal([4, 8], batching.PreferredBatchSize);
        Assert.Equal(100, batching.MaxQueueDelayMicroseconds);
        Assert.True(batching.PreserveOrdering);
        Assert.Equal(2, batching.PriorityLevels);
        Assert.Equal(1, batching.DefaultPriorityLevel);
        Assert.Equal(
            new QueuePolicyConfig { TimeoutAction = "DELAY", DefaultTimeoutMicroseconds = 5000, AllowTimeoutOverride = true, MaxQueueSize = 16 },
            batching.DefaultQueuePolicy);
        Assert.Equal([1L, 2L], batching.PriorityQueuePolicy.Keys.Order());
        Assert.Equal(new QueuePolicyConfig { TimeoutAction = "REJECT", MaxQueueSize = 4 }, batching.PriorityQueuePolicy[1]);
        Assert.Equal(new QueuePolicyConfig { DefaultTimeoutMicroseconds = 10 }, batching.PriorityQueuePolicy[2]);

        Assert.Equal(2, config.Parameters.Count);
        Assert.Equal("2", config.Parameters["intra_op_thread_count"]);
        Assert.Equal("0", config.Parameters["execution_mode"]);
        Assert.Equal("densenet.onnx", config.DefaultModelFilename);
        Assert.Equal("densenet.onnx", config.ModelFilename);
    }

    [Fact]
    public void ParsePbtxt_RealisticTritonConfig_ReadsEveryField()
    {
        AssertIsTheDensenetConfig(ModelConfigReader.ParsePbtxt(TritonPbtxt, "fallback"));
    }

    [Fact]
    public void ParseJson_SameConfigInProtobufJsonMapping_ReadsEveryField()
    {
        AssertIsTheDensenetConfig(ModelConfigReader.ParseJson(TritonJson, "fallback"));
    }

    [Fact]
    public void ToJsonThenParseJson_RoundTripsEveryField()
    {
        var original = ModelConfigReader.ParsePbtxt(TritonPbtxt, "fallback");

        var json = ModelConfigJson.ToJson(original);
        var reread = ModelConfigReader.ParseJson(json, "fallback");

        AssertIsTheDensenetConfig(reread);
        AssertSameConfig(original, reread);
    }

    [Theory]
    [InlineData("version_policy: { latest { num_versions: 3 } }")]
    [InlineData("version_policy: { all { } }")]
    [InlineData("version_policy: { specific { versions: 2 versions: 5 } }")]
    [InlineData("max_batch_size: 0 input { name: \"x\" data_type: TYPE_INT64 dims: [ -1, 4 ] }")]
    [InlineData("")]
    public void ToJsonThenParseJson_RoundTripsMinimalConfigs(string pbtxt)
    {
        var original = ModelConfigReader.ParsePbtxt(pbtxt, "m");

        var reread = ModelConfigReader.ParseJson(ModelConfigJson.ToJson(original), "other");

        AssertSameConfig(original, reread);
    }

    [Theory]
    [InlineData("/etc/passwd")]
    [InlineData("/work/.medserve/admin.key")]
    [InlineData("../../admin.key")]
    [InlineData("..")]
    [InlineData("sub/model.onnx")]
    [InlineData("model.onnx\u0000")]
    public void ParseJson_ModelFilenameNamingAnotherPlace_IsRefused(string name)
    {
        var json = System.Text.Json.JsonSerializer.Serialize(new { name = "m", default_model_filename = name });

        var error = Assert.Throws<ModelConfigException>(() => ModelConfigReader.ParseJson(json, "m"));

        Assert.Contains("default_model_filename must be a plain file name", error.Message);
        Assert.Throws<ModelConfigException>(() => ModelConfigReader.ParsePbtxt($"default_model_filename: \"{name.Replace("\u0000", "", StringComparison.Ordinal)}x/\"", "m"));
    }

    [Fact]
    public void ToJson_WritesTheEffectiveModelFilename()
    {
        var config = ModelConfigReader.ParsePbtxt("", "m");

        var reread = ModelConfigReader.ParseJson(ModelConfigJson.ToJson(config), "m");

        Assert.Equal("", config.DefaultModelFilename);
        Assert.Equal("model.onnx", reread.DefaultModelFilename);
        Assert.Equal(config.ModelFilename, reread.ModelFilename);
    }

    private static void AssertSameConfig(ModelConfig expected, ModelConfig actual)
    {
        Assert.Equal(expected.Name, actual.Name);
        Assert.Equal(expected.Platform, actual.Platform);
        Assert.Equal(expected.Backend, actual.Backend);
        Assert.Equal(expected.MaxBatchSize, actual.MaxBatchSize);
        Assert.Equal(expected.VersionPolicy.Kind, actual.VersionPolicy.Kind);
        Assert.Equal(expected.VersionPolicy.NumVersions, actual.VersionPolicy.NumVersions);
        Assert.Equal(expected.VersionPolicy.Versions, actual.VersionPolicy.Versions);
        AssertSameTensors(expected.Inputs, actual.Inputs);
        AssertSameTensors(expected.Outputs, actual.Outputs);
        Assert.Equal(expected.InstanceGroups.Count, actual.InstanceGroups.Count);
        for (var i = 0; i < expected.InstanceGroups.Count; i++)
        {
            Assert.Equal(expected.InstanceGroups[i] with { Gpus = [] }, actual.InstanceGroups[i] with { Gpus = [] });
            Assert.Equal(expected.InstanceGroups[i].Gpus, actual.InstanceGroups[i].Gpus);
        }

        if (expected.DynamicBatching is null)
        {
            Assert.Null(actual.DynamicBatching);
        }
        else
        {
            var a = Assert.IsType<DynamicBatchingConfig>(actual.DynamicBatching);
            var e = expected.DynamicBatching;
            Assert.Equal(e.PreferredBatchSize, a.PreferredBatchSize);
            Assert.Equal(e.MaxQueueDelayMicroseconds, a.MaxQueueDelayMicroseconds);
            Assert.Equal(e.PreserveOrdering, a.PreserveOrdering);
            Assert.Equal(e.PriorityLevels, a.PriorityLevels);
            Assert.Equal(e.DefaultPriorityLevel, a.DefaultPriorityLevel);
            Assert.Equal(e.DefaultQueuePolicy, a.DefaultQueuePolicy);
            Assert.Equal(e.PriorityQueuePolicy.OrderBy(p => p.Key), a.PriorityQueuePolicy.OrderBy(p => p.Key));
        }

        Assert.Equal(expected.ModelFilename, actual.ModelFilename);
        Assert.Equal(expected.Parameters.OrderBy(p => p.Key), actual.Parameters.OrderBy(p => p.Key));
    }

    private static void AssertSameTensors(IReadOnlyList<TensorConfig> expected, IReadOnlyList<TensorConfig> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Name, actual[i].Name);
            Assert.Equal(expected[i].DataType, actual[i].DataType);
            Assert.Equal(expected[i].Dims, actual[i].Dims);
            Assert.Equal(expected[i].Optional, actual[i].Optional);
        }
    }

    [Fact]
    public void ParsePbtxt_EmptyConfig_UsesDefaults()
    {
        var config = ModelConfigReader.ParsePbtxt("", "folder");

        Assert.Equal("folder", config.Name);
        Assert.Equal(0, config.MaxBatchSize);
        Assert.Empty(config.Inputs);
        Assert.Empty(config.Outputs);
        Assert.Equal(VersionPolicyKind.Latest, config.VersionPolicy.Kind);
        Assert.Equal(1, config.VersionPolicy.NumVersions);
        Assert.Empty(config.InstanceGroups);
        Assert.Equal(1, config.InstanceCount);
        Assert.False(config.WantsGpu);
        Assert.Null(config.DynamicBatching);
        Assert.Empty(config.Parameters);
        Assert.Equal("model.onnx", config.ModelFilename);
    }

    [Fact]
    public void ParsePbtxt_EmptyName_FallsBackToTheFolderName()
    {
        Assert.Equal("folder", ModelConfigReader.ParsePbtxt("name: \"\"", "folder").Name);
    }

    [Theory]
    [InlineData("version_policy { latest { num_versions: 2 } }", VersionPolicyKind.Latest, 2)]
    [InlineData("version_policy { latest { } }", VersionPolicyKind.Latest, 1)]
    [InlineData("version_policy: { all: { } }", VersionPolicyKind.All, 0)]
    [InlineData("version_policy { specific { versions: 4 } }", VersionPolicyKind.Specific, 0)]
    public void ParsePbtxt_VersionPolicy_ReadsEachKind(string text, VersionPolicyKind kind, int numVersions)
    {
        var policy = ModelConfigReader.ParsePbtxt(text, "m").VersionPolicy;

        Assert.Equal(kind, policy.Kind);
        Assert.Equal(numVersions, policy.NumVersions);
    }

    [Theory]
    [InlineData("instance_group { }", InstanceKind.Auto, 1)]
    [InlineData("instance_group { kind: KIND_MODEL count: 3 }", InstanceKind.Model, 3)]
    [InlineData("instance_group: [ { kind: KIND_CPU } ]", InstanceKind.Cpu, 1)]
    public void ParsePbtxt_InstanceGroup_DefaultsToOneAutoInstance(string text, InstanceKind kind, int count)
    {
        var group = Assert.Single(ModelConfigReader.ParsePbtxt(text, "m").InstanceGroups);

        Assert.Equal(kind, group.Kind);
        Assert.Equal(count, group.Count);
    }

    [Fact]
    public void ParsePbtxt_EmptyDynamicBatching_IsPresentWithDefaults()
    {
        var batching = Assert.IsType<DynamicBatchingConfig>(ModelConfigReader.ParsePbtxt("dynamic_batching { }", "m").DynamicBatching);

        Assert.Empty(batching.PreferredBatchSize);
        Assert.Equal(0, batching.MaxQueueDelayMicroseconds);
        Assert.False(batching.PreserveOrdering);
        Assert.Null(batching.DefaultQueuePolicy);
        Assert.Empty(batching.PriorityQueuePolicy);
    }

    [Fact]
    public void ParsePbtxt_ParameterWithoutValue_IsEmptyString()
    {
        var config = ModelConfigReader.ParsePbtxt("parameters { key: \"flag\" }", "m");

        Assert.Equal("", config.Parameters["flag"]);
    }

    [Fact]
    public void ParsePbtxt_DataTypeAsBareWireName_IsAccepted()
    {
        var config = ModelConfigReader.ParsePbtxt("input { name: \"x\" data_type: FP16 dims: 2 }", "m");

        Assert.Equal(TensorDataType.Fp16, config.Inputs[0].DataType);
    }

    [Fact]
    public void ParsePbtxt_UnknownTopLevelField_IsRejectedByName()
    {
        var error = Assert.Throws<ModelConfigException>(() => ModelConfigReader.ParsePbtxt("name: \"m\"\nmax_batch: 4", "m", "m/config.pbtxt"));

        Assert.Contains("m/config.pbtxt", error.Message);
        Assert.Contains("unknown field 'max_batch'", error.Message);
    }

    [Fact]
    public void ParseJson_UnknownTopLevelField_IsRejectedByName()
    {
        var error = Assert.Throws<ModelConfigException>(() => ModelConfigReader.ParseJson("""{"name":"m","maxBatchSize":4}""", "m"));

        Assert.Contains("unknown field 'maxBatchSize'", error.Message);
    }

    [Theory]
    [InlineData("TYPE_FLOAT")]
    [InlineData("TYPE_INVALID")]
    [InlineData("type_fp32")]
    public void ParsePbtxt_UnknownDataType_IsRejectedNamingTheTensor(string dataType)
    {
        var text = $"input {{ name: \"a\" data_type: TYPE_FP32 dims: 1 }}\ninput {{ name: \"scan\" data_type: {dataType} dims: [ 1 ] }}";

        var error = Assert.Throws<ModelConfigException>(() => ModelConfigReader.ParsePbtxt(text, "m"));

        Assert.Contains("input[1]", error.Message);
        Assert.Contains("'scan'", error.Message);
        Assert.Contains($"unknown data_type '{dataType}'", error.Message);
    }

    [Fact]
    public void ParsePbtxt_MissingDataType_IsRejected()
    {
        var error = Assert.Throws<ModelConfigException>(() => ModelConfigReader.ParsePbtxt("output { name: \"y\" dims: 1 }", "m"));

        Assert.Contains("output[0]", error.Message);
        Assert.Contains("data_type", error.Message);
    }

    [Theory]
    [InlineData("input { data_type: TYPE_FP32 dims: 1 }", "input[0]: 'name' is required")]
    [InlineData("input: 5", "input[0]: expected a message")]
    [InlineData("max_batch_size: -1", "max_batch_size: -1 is out of range")]
    [InlineData("max_batch_size: eight", "max_batch_size: expected an integer, found 'eight'")]
    [InlineData("max_batch_size { }", "max_batch_size: expected an integer, found '{...}'")]
    [InlineData("name { }", "name: expected a single value")]
    [InlineData("input { name: \"x\" data_type: TYPE_FP32 dims: [ -2 ] }", "input[0].dims: -2 is out of range")]
    [InlineData("input { name: \"x\" data_type: TYPE_FP32 dims: 1 optional: maybe }", "input[0].optional: expected true or false")]
    [InlineData("version_policy { }", "version_policy: expected one of latest, all, specific")]
    [InlineData("version_policy { latest { num_versions: 0 } }", "version_policy.latest.num_versions: 0 is out of range")]
    [InlineData("instance_group { kind: KIND_TPU }", "instance_group[0]: unknown kind 'KIND_TPU'")]
    [InlineData("instance_group { count: 0 }", "instance_group[0].count: 0 is out of range")]
    [InlineData("dynamic_batching { default_queue_policy { timeout_action: DROP } }", "timeout_action must be REJECT or DELAY, not 'DROP'")]
    [InlineData("dynamic_batching { preferred_batch_size: 0 }", "dynamic_batching.preferred_batch_size: 0 is out of range")]
    [InlineData("dynamic_batching: 1", "dynamic_batching: expected a message")]
    public void ParsePbtxt_InvalidValues_AreRejectedSayingWhere(string text, string message)
    {
        var error = Assert.Throws<ModelConfigException>(() => ModelConfigReader.ParsePbtxt(text, "m", "m/config.pbtxt"));

        Assert.StartsWith("m/config.pbtxt: ", error.Message);
        Assert.Contains(message, error.Message);
    }

    [Fact]
    public void ParsePbtxt_SyntaxError_ReportsTheLine()
    {
        var error = Assert.Throws<ModelConfigException>(() =>
            ModelConfigReader.ParsePbtxt("name: \"m\"\ninput {\n  name \"x\"\n}", "m", "m/config.pbtxt"));

        Assert.Contains("m/config.pbtxt line 3", error.Message);
    }

    [Theory]
    [InlineData("{")]
    [InlineData("[1]")]
    [InlineData("{\"name\": null}")]
    [InlineData("")]
    public void ParseJson_InvalidJson_IsAModelConfigException(string json)
    {
        Assert.Throws<ModelConfigException>(() => ModelConfigReader.ParseJson(json, "m"));
    }

    [Fact]
    public void ParseJson_NullNested_NamesThePath()
    {
        var error = Assert.Throws<ModelConfigException>(() =>
            ModelConfigReader.ParseJson("""{"input":[{"name":"x","data_type":null}]}""", "m"));

        Assert.Contains("input[0].data_type", error.Message);
    }

    [Fact]
    public void ParseJson_ParameterNamedKey_IsAParameterNotTheTextFormsKeyField()
    {
        var config = ModelConfigReader.ParseJson("{\"parameters\":{\"key\":{\"string_value\":\"v\"}}}", "m");

        Assert.Equal("v", config.Parameters["key"]);
    }

    [Fact]
    public void PbtxtParameterNamedKey_SurvivesTheJsonRoundTrip()
    {
        var config = ModelConfigReader.ParsePbtxt("parameters { key: \"key\" value { string_value: \"v\" } }", "m");

        var again = ModelConfigReader.ParseJson(ModelConfigJson.ToJson(config), "m");

        Assert.Equal("v", again.Parameters["key"]);
    }

    [Fact]
    public void A_monitoring_block_reads_the_same_from_pbtxt_and_json()
    {
        var pbtxt = ModelConfigReader.ParsePbtxt("""
            name: "risk"
            monitoring {
              score_output: "probabilities"
              positive_index: 1
              threshold: 0.3
              subgroups: [ "sex", "age_band" ]
              subgroup_margin: 0.1
              feature_names: [ "age", "lactate" ]
              output_range { min: 0 max: 1 }
            }
            """, "risk");
        var json = ModelConfigReader.ParseJson("""
            {"name": "risk", "monitoring": {"score_output": "probabilities", "positive_index": 1, "threshold": 0.3, "subgroups": ["sex", "age_band"],
             "subgroup_margin": 0.1, "feature_names": ["age", "lactate"], "output_range": {"min": 0, "max": 1}}}
            """, "risk");

        Assert.Equal(pbtxt.Monitoring.Canonical(), json.Monitoring.Canonical());
        Assert.Equal(("probabilities", 1, 0.3, 0.1), (pbtxt.Monitoring.ScoreOutput, pbtxt.Monitoring.PositiveIndex, pbtxt.Monitoring.Threshold, pbtxt.Monitoring.SubgroupMargin));
        Assert.Equal(["sex", "age_band"], pbtxt.Monitoring.Subgroups);
        Assert.Equal((0.0, 1.0), (pbtxt.Monitoring.OutputMin!.Value, pbtxt.Monitoring.OutputMax!.Value));
        Assert.Equal(MonitoringSpec.Default.Canonical(), ModelConfigReader.ParsePbtxt("name: \"x\"", "x").Monitoring.Canonical());
    }

    [Theory]
    [InlineData("monitoring { threshold: 1.5 }", "monitoring.threshold")]
    [InlineData("monitoring { subgroups: [ \"patient_id\" ] }", "never patient_id")]
    [InlineData("monitoring { subgroups: [ \"Sex; DROP\" ] }", "is not a parameter name")]
    [InlineData("monitoring { subgroups: [ \"sex\", \"sex\" ] }", "each named once")]
    [InlineData("monitoring { scores: \"p\" }", "unknown field 'scores'")]
    [InlineData("monitoring { output_range { min: 1 max: 0 } }", "min is above max")]
    public void A_bad_monitoring_block_is_refused_naming_the_field(string block, string expected)
    {
        var error = Assert.Throws<ModelConfigException>(() => ModelConfigReader.ParsePbtxt("name: \"x\"\n" + block, "x"));
        Assert.Contains(expected, error.Message);
    }
}
