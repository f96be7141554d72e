using MedServe.Tensors;

namespace MedServe.Tests.Tensors;

public sealed class TensorShapeTests
{
    [Theory]
    [InlineData(new long[0], 1)]
    [InlineData(new long[] { 5 }, 5)]
    [InlineData(new long[] { 2, 3, 4 }, 24)]
    [InlineData(new long[] { 2, 0, 4 }, 0)]
    [InlineData(new long[] { 1, 3, 224, 224 }, 150528)]
    public void ElementCount_MultipliesTheDimensions(long[] shape, long expected)
    {
        Assert.Equal(expected, TensorShape.ElementCount(shape));
    }

    [Theory]
    [InlineData(new long[] { -1 })]
    [InlineData(new long[] { 2, -1, 3 })]
    [InlineData(new long[] { 0, -5 })]
    public void ElementCount_NegativeDimension_ReturnsMinusOne(long[] shape)
    {
        Assert.Equal(-1, TensorShape.ElementCount(shape));
    }

    [Fact]
    public void ElementCount_ProductOverflowingInt64_ReturnsMinusOne()
    {
        Assert.Equal(-1, TensorShape.ElementCount([long.MaxValue, 2]));
        Assert.Equal(-1, TensorShape.ElementCount([1L << 32, 1L << 32]));
    }

    [Fact]
    public void ElementCount_ProductJustBelowOverflow_IsExact()
    {
        Assert.Equal(long.MaxValue, TensorShape.ElementCount([long.MaxValue, 1]));
        Assert.Equal(1L << 62, TensorShape.ElementCount([1L << 31, 1L << 31]));
    }

    [Theory]
    [InlineData(new long[] { -1, 3 }, new long[] { 7, 3 })]
    [InlineData(new long[] { -1, -1 }, new long[] { 0, 9 })]
    [InlineData(new long[] { 2, 3 }, new long[] { 2, 3 })]
    [InlineData(new long[0], new long[0])]
    public void Matches_EqualDimsOrWildcards_ReturnsTrue(long[] declared, long[] actual)
    {
        Assert.True(TensorShape.Matches(declared, actual));
    }

    [Theory]
    [InlineData(new long[] { -1, 3 }, new long[] { 7, 4 })]
    [InlineData(new long[] { 2, 3 }, new long[] { 3, 2 })]
    [InlineData(new long[] { -1, 3 }, new long[] { 3 })]
    [InlineData(new long[] { 3 }, new long[] { 1, 3 })]
    [InlineData(new long[] { -1 }, new long[0])]
    public void Matches_DifferentDimsOrRank_ReturnsFalse(long[] declared, long[] actual)
    {
        Assert.False(TensorShape.Matches(declared, actual));
    }

    [Theory]
    [InlineData(new long[0], "[]")]
    [InlineData(new long[] { 4 }, "[4]")]
    [InlineData(new long[] { -1, 3, 224 }, "[-1,3,224]")]
    public void Format_WritesBracketedCommaSeparatedDims(long[] shape, string expected)
    {
        Assert.Equal(expected, TensorShape.Format(shape));
    }
}
