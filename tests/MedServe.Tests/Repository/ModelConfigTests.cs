using MedServe.Repository;
using MedServe.Tensors;

namespace MedServe.Tests.Repository;

public sealed class ModelConfigTests
{
    private static readonly TensorConfig Image = new("image", TensorDataType.Fp32, [3, 224, 224]);

    [Fact]
    public void WireShape_WithoutBatching_IsTheDims()
    {
        var config = new ModelConfig { Name = "m", MaxBatchSize = 0 };

        Assert.Equal([3L, 224L, 224L], config.WireShape(Image));
    }

    [Fact]
    public void WireShape_WithBatching_PrependsADynamicBatchDimension()
    {
        var config = new ModelConfig { Name = "m", MaxBatchSize = 16 };

        Assert.Equal([-1L, 3L, 224L, 224L], config.WireShape(Image));
        Assert.Equal([3L, 224L, 224L], Image.Dims);
    }

    [Fact]
    public void WireShape_ScalarDimsWithBatching_IsTheBatchDimensionAlone()
    {
        var config = new ModelConfig { Name = "m", MaxBatchSize = 1 };

        Assert.Equal([-1L], config.WireShape(new TensorConfig("s", TensorDataType.Int64, [])));
    }

    [Fact]
    public void ModelFilename_DefaultsToModelOnnx()
    {
        Assert.Equal("model.onnx", new ModelConfig { Name = "m" }.ModelFilename);
        Assert.Equal("net.onnx", new ModelConfig { Name = "m", DefaultModelFilename = "net.onnx" }.ModelFilename);
    }

    [Fact]
    public void InstanceCount_SumsTheGroups()
    {
        var config = new ModelConfig
        {
            Name = "m",
            InstanceGroups = [new("a", InstanceKind.Cpu, 2), new("b", InstanceKind.Auto, 3)],
        };

        Assert.Equal(5, config.InstanceCount);
        Assert.False(config.WantsGpu);
    }

    [Fact]
    public void VersionPolicyLatest_SelectsTheHighestVersionsFirst()
    {
        Assert.Equal([5L, 3L], VersionPolicy.Latest(2).Select([1, 5, 3, 5]));
        Assert.Equal([5L], VersionPolicy.Latest(1).Select([3, 5, 1]));
        Assert.Equal([2L, 1L], VersionPolicy.Latest(10).Select([1, 2]));
    }

    [Fact]
    public void VersionPolicyLatest_WithZeroCount_StillSelectsOne()
    {
        Assert.Equal([9L], VersionPolicy.Latest(0).Select([9, 4]));
    }

    [Fact]
    public void VersionPolicyAll_SelectsEveryDistinctVersionDescending()
    {
        Assert.Equal([7L, 3L, 2L, 1L], VersionPolicy.All.Select([2, 7, 1, 3, 2]));
    }

    [Fact]
    public void VersionPolicySpecific_SelectsOnlyListedVersionsThatExist()
    {
        Assert.Equal([3L, 1L], VersionPolicy.Specific([1, 3, 8]).Select([1, 2, 3, 4]));
        Assert.Empty(VersionPolicy.Specific([8]).Select([1, 2]));
    }

    [Fact]
    public void VersionPolicy_NothingAvailable_SelectsNothing()
    {
        Assert.Empty(VersionPolicy.Latest(1).Select([]));
        Assert.Empty(VersionPolicy.All.Select([]));
    }
}
