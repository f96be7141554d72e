using MedServe.Backends;
using MedServe.Lifecycle;
using MedServe.Repository;
using MedServe.Tensors;

namespace MedServe.Tests.Lifecycle;

public sealed class ConfigCompleterTests
{
    private const string Platform = ModelConfig.OnnxPlatform;

    private static readonly ModelSignature Dynamic = new(
        [new TensorConfig("input", TensorDataType.Fp32, [-1, 3, 224, 224]), new TensorConfig("mask", TensorDataType.Bool, [-1, 4])],
        [new TensorConfig("probs", TensorDataType.Fp32, [-1, 1000])]);

    private static readonly ModelSignature Fixed = new(
        [new TensorConfig("input", TensorDataType.Fp32, [1, 30])],
        [new TensorConfig("probs", TensorDataType.Fp32, [1, 2])]);

    [Fact]
    public void Complete_NoConfigAndDynamicLeadingDims_BatchesWithTheDefaultAndDropsTheBatchDim()
    {
        var completed = ConfigCompleter.Complete(new ModelConfig { Name = "m" }, Dynamic, Platform, 8);

        Assert.Equal(8, completed.MaxBatchSize);
        Assert.Equal(Platform, completed.Platform);
        Assert.Equal(["input", "mask"], completed.Inputs.Select(i => i.Name));
        Assert.Equal([3L, 224L, 224L], completed.Inputs[0].Dims);
        Assert.Equal([4L], completed.Inputs[1].Dims);
        Assert.Equal(TensorDataType.Bool, completed.Inputs[1].DataType);
        Assert.Equal([1000L], Assert.Single(completed.Outputs).Dims);
        Assert.Equal([-1L, 3L, 224L, 224L], completed.WireShape(completed.Inputs[0]));
    }

    [Fact]
    public void Complete_NoConfigAndFixedLeadingDim_DoesNotBatch()
    {
        var completed = ConfigCompleter.Complete(new ModelConfig { Name = "m" }, Fixed, Platform, 8);

        Assert.Equal(0, completed.MaxBatchSize);
        Assert.Equal([1L, 30L], completed.Inputs[0].Dims);
        Assert.Equal([1L, 2L], completed.Outputs[0].Dims);
    }

    [Fact]
    public void Complete_OneTensorWithoutDynamicLeadingDim_DoesNotBatch()
    {
        var signature = Dynamic with { Outputs = [new TensorConfig("probs", TensorDataType.Fp32, [1000])] };

        var completed = ConfigCompleter.Complete(new ModelConfig { Name = "m" }, signature, Platform, 8);

        Assert.Equal(0, completed.MaxBatchSize);
        Assert.Equal([-1L, 3L, 224L, 224L], completed.Inputs[0].Dims);
    }

    [Fact]
    public void Complete_DefaultMaxBatchSizeZero_KeepsFullDims()
    {
        var completed = ConfigCompleter.Complete(new ModelConfig { Name = "m" }, Dynamic, Platform, 0);

        Assert.Equal(0, completed.MaxBatchSize);
        Assert.Equal([-1L, 3L, 224L, 224L], completed.Inputs[0].Dims);
    }

    [Fact]
    public void Complete_DeclaredPlatform_IsKept()
    {
        var completed = ConfigCompleter.Complete(new ModelConfig { Name = "m", Platform = "custom" }, Dynamic, Platform, 8);

        Assert.Equal("custom", completed.Platform);
    }

    [Fact]
    public void Complete_DeclaredMatchingConfig_IsKeptAsDeclared()
    {
        var config = new ModelConfig
        {
            Name = "m",
            MaxBatchSize = 2,
            Inputs = [new TensorConfig("mask", TensorDataType.Bool, [4]), new TensorConfig("input", TensorDataType.Fp32, [3, -1, 224])],
            Outputs = [new TensorConfig("probs", TensorDataType.Fp32, [1000])],
        };

        var completed = ConfigCompleter.Complete(config, Dynamic, Platform, 8);

        Assert.Equal(2, completed.MaxBatchSize);
        Assert.Equal(["mask", "input"], completed.Inputs.Select(i => i.Name));
        Assert.Equal([3L, -1L, 224L], completed.Inputs[1].Dims);
        Assert.Equal([1000L], completed.Outputs[0].Dims);
    }

    [Fact]
    public void Complete_DeclaredInputsOnly_CompletesOutputsFromTheModel()
    {
        var config = new ModelConfig
        {
            Name = "m",
            MaxBatchSize = 4,
            Inputs = [new TensorConfig("input", TensorDataType.Fp32, [3, 224, 224]), new TensorConfig("mask", TensorDataType.Bool, [4])],
        };

        var completed = ConfigCompleter.Complete(config, Dynamic, Platform, 8);

        Assert.Equal(4, completed.MaxBatchSize);
        Assert.Equal([1000L], Assert.Single(completed.Outputs).Dims);
    }

    [Fact]
    public void Complete_DeclaredWithoutBatching_ComparesFullDims()
    {
        var config = new ModelConfig
        {
            Name = "m",
            Inputs = [new TensorConfig("input", TensorDataType.Fp32, [1, 30])],
            Outputs = [new TensorConfig("probs", TensorDataType.Fp32, [1, 2])],
        };

        var completed = ConfigCompleter.Complete(config, Fixed, Platform, 8);

        Assert.Equal(0, completed.MaxBatchSize);
        Assert.Equal([1L, 30L], completed.Inputs[0].Dims);
    }

    [Fact]
    public void Complete_DeclaredSubsetOfOutputs_IsAllowed()
    {
        var signature = Fixed with { Outputs = [.. Fixed.Outputs, new TensorConfig("label", TensorDataType.Int64, [1])] };
        var config = new ModelConfig { Name = "m", Inputs = Fixed.Inputs, Outputs = [new TensorConfig("label", TensorDataType.Int64, [1])] };

        var completed = ConfigCompleter.Complete(config, signature, Platform, 8);

        Assert.Equal("label", Assert.Single(completed.Outputs).Name);
    }

    [Fact]
    public void Complete_WrongDatatype_IsAModelConfigException()
    {
        var config = new ModelConfig { Name = "m", Inputs = [new TensorConfig("input", TensorDataType.Fp16, [1, 30])] };

        var error = Assert.Throws<ModelConfigException>(() => ConfigCompleter.Complete(config, Fixed, Platform, 8));

        Assert.Contains("input 'input' is TYPE_FP16 in the config but TYPE_FP32 in the model", error.Message);
    }

    [Fact]
    public void Complete_WrongOutputDatatype_IsAModelConfigException()
    {
        var config = new ModelConfig { Name = "m", Outputs = [new TensorConfig("probs", TensorDataType.Fp64, [1, 2])] };

        var error = Assert.Throws<ModelConfigException>(() => ConfigCompleter.Complete(config, Fixed, Platform, 8));

        Assert.Contains("output 'probs'", error.Message);
        Assert.Contains("TYPE_FP64", error.Message);
    }

    [Theory]
    [InlineData(new long[] { 1, 31 })]
    [InlineData(new long[] { 30 })]
    [InlineData(new long[] { 1, 30, 1 })]
    public void Complete_WrongDims_IsAModelConfigException(long[] dims)
    {
        var config = new ModelConfig { Name = "m", Inputs = [new TensorConfig("input", TensorDataType.Fp32, dims)] };

        var error = Assert.Throws<ModelConfigException>(() => ConfigCompleter.Complete(config, Fixed, Platform, 8));

        Assert.Contains($"input 'input' has shape {TensorShape.Format(dims)} by the config but [1,30] in the model", error.Message);
    }

    [Fact]
    public void Complete_WrongDimsWithBatching_ReportsTheWireShape()
    {
        var config = new ModelConfig
        {
            Name = "m",
            MaxBatchSize = 4,
            Inputs = [new TensorConfig("input", TensorDataType.Fp32, [3, 224, 225]), new TensorConfig("mask", TensorDataType.Bool, [4])],
        };

        var error = Assert.Throws<ModelConfigException>(() => ConfigCompleter.Complete(config, Dynamic, Platform, 8));

        Assert.Contains("[-1,3,224,225] by the config but [-1,3,224,224] in the model", error.Message);
    }

    [Fact]
    public void Complete_UnknownTensorName_IsAModelConfigException()
    {
        var config = new ModelConfig { Name = "m", Inputs = [new TensorConfig("pixels", TensorDataType.Fp32, [1, 30])] };

        var error = Assert.Throws<ModelConfigException>(() => ConfigCompleter.Complete(config, Fixed, Platform, 8));

        Assert.Contains("input 'pixels' is not in the model", error.Message);
        Assert.Contains("'input'", error.Message);
    }

    [Fact]
    public void Complete_UnknownOutputName_IsAModelConfigException()
    {
        var config = new ModelConfig { Name = "m", Outputs = [new TensorConfig("logits", TensorDataType.Fp32, [1, 2])] };

        var error = Assert.Throws<ModelConfigException>(() => ConfigCompleter.Complete(config, Fixed, Platform, 8));

        Assert.Contains("output 'logits' is not in the model", error.Message);
    }

    [Fact]
    public void Complete_ModelInputMissingFromTheConfig_IsAModelConfigException()
    {
        var config = new ModelConfig { Name = "m", MaxBatchSize = 4, Inputs = [new TensorConfig("input", TensorDataType.Fp32, [3, 224, 224])] };

        var error = Assert.Throws<ModelConfigException>(() => ConfigCompleter.Complete(config, Dynamic, Platform, 8));

        Assert.Contains("the model's input 'mask' is missing from the config", error.Message);
    }

    [Fact]
    public void Complete_MaxBatchSizeOnAModelWithoutADynamicBatchDim_IsAModelConfigException()
    {
        var config = new ModelConfig { Name = "m", MaxBatchSize = 4 };

        var error = Assert.Throws<ModelConfigException>(() => ConfigCompleter.Complete(config, Fixed, Platform, 8));

        Assert.Contains("max_batch_size is 4", error.Message);
    }
}
