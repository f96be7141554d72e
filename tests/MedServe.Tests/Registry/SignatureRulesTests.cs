using MedServe.Backends;
using MedServe.Registry.Versioning;
using MedServe.Repository;
using MedServe.Tensors;

namespace MedServe.Tests.Registry;

public sealed class SignatureRulesTests
{
    private static readonly ModelSignature Base = new(
        [new TensorConfig("features", TensorDataType.Fp32, [-1, 30])],
        [new TensorConfig("probability", TensorDataType.Fp32, [-1, 1])]);

    public static TheoryData<string, ModelSignature, ChangeLevel, string> Cases => new()
    {
        { "unchanged", Base, ChangeLevel.Patch, "" },
        { "input renamed", Base with { Inputs = [new TensorConfig("x", TensorDataType.Fp32, [-1, 30])] }, ChangeLevel.Major, "input 'features' was removed or renamed" },
        { "input datatype", Base with { Inputs = [new TensorConfig("features", TensorDataType.Fp64, [-1, 30])] }, ChangeLevel.Major, "input 'features' changed datatype from FP32 to FP64" },
        { "input shape", Base with { Inputs = [new TensorConfig("features", TensorDataType.Fp32, [-1, 31])] }, ChangeLevel.Major, "input 'features' changed shape from [-1,30] to [-1,31]" },
        { "input rank", Base with { Inputs = [new TensorConfig("features", TensorDataType.Fp32, [-1, 30, 1])] }, ChangeLevel.Major, "input 'features' changed rank" },
        { "input widened", Base with { Inputs = [new TensorConfig("features", TensorDataType.Fp32, [-1, -1])] }, ChangeLevel.Minor, "input 'features' widened its shape from [-1,30] to [-1,-1]" },
        { "output narrowed to dynamic", Base with { Outputs = [new TensorConfig("probability", TensorDataType.Fp32, [-1, -1])] }, ChangeLevel.Major, "output 'probability' changed shape" },
        { "output removed", Base with { Outputs = [] }, ChangeLevel.Major, "output 'probability' was removed or renamed" },
        { "output added", Base with { Outputs = [.. Base.Outputs, new TensorConfig("label", TensorDataType.Int64, [-1, 1])] }, ChangeLevel.Minor, "output 'label' was added" },
        { "optional input added", Base with { Inputs = [.. Base.Inputs, new TensorConfig("age", TensorDataType.Fp32, [-1, 1]) { Optional = true }] }, ChangeLevel.Minor, "optional input 'age' was added" },
        { "required input added", Base with { Inputs = [.. Base.Inputs, new TensorConfig("age", TensorDataType.Fp32, [-1, 1])] }, ChangeLevel.Major, "required input 'age' was added" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Compare_classifies_each_change(string _, ModelSignature next, ChangeLevel level, string change)
    {
        var verdict = SignatureRules.Compare(Base, next);

        Assert.Equal(level, verdict.Level);
        if (change.Length == 0)
        {
            Assert.Empty(verdict.Changes);
        }
        else
        {
            Assert.Contains(verdict.Changes, c => c.Contains(change, StringComparison.Ordinal));
        }
    }

    [Theory]
    [InlineData("1.4.0", "1.4.1", ChangeLevel.Patch, null)]
    [InlineData("1.4.0", "1.5.0", ChangeLevel.Minor, null)]
    [InlineData("1.4.0", "2.0.0", ChangeLevel.Major, null)]
    [InlineData("1.4.0", "1.4.1", ChangeLevel.Minor, "needs a minor version, 1.5.0")]
    [InlineData("1.4.0", "1.5.0", ChangeLevel.Major, "needs a major version, 2.0.0")]
    [InlineData("1.4.0", "1.4.0", ChangeLevel.Patch, "does not follow 1.4.0; use 1.4.1 or later")]
    [InlineData("1.4.0", "1.3.9", ChangeLevel.Patch, "does not follow 1.4.0")]
    public void Check_accepts_enough_of_a_step_and_names_the_right_version_otherwise(string previous, string proposed, ChangeLevel change, string? message)
    {
        var next = change switch
        {
            ChangeLevel.Major => Base with { Outputs = [] },
            ChangeLevel.Minor => Base with { Outputs = [.. Base.Outputs, new TensorConfig("label", TensorDataType.Int64, [-1, 1])] },
            _ => Base,
        };

        var problem = SignatureRules.Check(SemanticVersion.Parse(previous), Base, SemanticVersion.Parse(proposed), next);

        if (message is null)
        {
            Assert.Null(problem);
        }
        else
        {
            Assert.Contains(message, problem);
        }
    }

    [Theory]
    [InlineData("1.4.0", true)]
    [InlineData("0.0.1", true)]
    [InlineData("1.4", false)]
    [InlineData("01.4.0", false)]
    [InlineData("1.4.0-beta", false)]
    [InlineData("a.b.c", false)]
    public void Semantic_versions_parse_strictly(string text, bool valid)
    {
        Assert.Equal(valid, SemanticVersion.TryParse(text, out _));
    }

    [Fact]
    public void Semantic_versions_order_numerically()
    {
        Assert.True(SemanticVersion.Parse("1.10.0") > SemanticVersion.Parse("1.9.9"));
        Assert.True(SemanticVersion.Parse("2.0.0") > SemanticVersion.Parse("1.99.99"));
        Assert.Equal("1.5.0", SemanticVersion.Parse("1.4.7").NextMinor().ToString());
    }
}
