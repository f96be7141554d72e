using MedServe.Inference;

namespace MedServe.Tests.Inference;

public sealed class InferenceParameterTests
{
    [Theory]
    [InlineData("true", true)]
    [InlineData("False", false)]
    public void TryGetBool_ReadsBooleanStrings(string text, bool expected)
    {
        Assert.True(InferenceParameter.Of(text).TryGetBool(out var value));
        Assert.Equal(expected, value);
    }

    [Fact]
    public void TryGetBool_RejectsNumbersAndOtherStrings()
    {
        Assert.True(InferenceParameter.Of(true).TryGetBool(out var flag));
        Assert.True(flag);
        Assert.False(InferenceParameter.Of(1L).TryGetBool(out _));
        Assert.False(InferenceParameter.Of("yes").TryGetBool(out _));
        Assert.False(InferenceParameter.Of(1.0).TryGetBool(out _));
    }

    [Fact]
    public void TryGetInt64_ReadsIntegersAndIntegerStrings()
    {
        Assert.True(InferenceParameter.Of(42L).TryGetInt64(out var integer));
        Assert.Equal(42, integer);
        Assert.True(InferenceParameter.Of("-7").TryGetInt64(out var parsed));
        Assert.Equal(-7, parsed);
        Assert.False(InferenceParameter.Of("1.5").TryGetInt64(out _));
        Assert.False(InferenceParameter.Of(2.0).TryGetInt64(out _));
        Assert.False(InferenceParameter.Of(true).TryGetInt64(out _));
    }

    [Fact]
    public void ToString_WritesEachKindInvariantly()
    {
        Assert.Equal("text", InferenceParameter.Of("text").ToString());
        Assert.Equal("-3", InferenceParameter.Of(-3L).ToString());
        Assert.Equal("0.1", InferenceParameter.Of(0.1).ToString());
        Assert.Equal("true", InferenceParameter.Of(true).ToString());
        Assert.Equal("false", InferenceParameter.Of(false).ToString());
    }
}
