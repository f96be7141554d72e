using System.Text;
using MedServe.Tensors;
using MedServe.Tests.Support;

namespace MedServe.Tests.Tensors;

public sealed class BytesTensorTests
{
    [Fact]
    public void CountElements_WellFormedData_CountsEveryElement()
    {
        var data = Le.Strings("alpha", "", "é", "z");

        Assert.Equal(4, BytesTensor.CountElements(data));
    }

    [Fact]
    public void CountElements_EmptyData_IsZero()
    {
        Assert.Equal(0, BytesTensor.CountElements([]));
    }

    [Fact]
    public void CountElements_OnlyEmptyElements_CountsThem()
    {
        Assert.Equal(3, BytesTensor.CountElements(new byte[12]));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void CountElements_TruncatedLengthPrefix_ReturnsMinusOne(int prefixBytes)
    {
        var data = Le.Strings("ab").Concat(new byte[prefixBytes]).ToArray();

        Assert.Equal(-1, BytesTensor.CountElements(data));
    }

    [Fact]
    public void CountElements_LengthRunningPastTheEnd_ReturnsMinusOne()
    {
        var data = Le.Strings("abcd");
        data = data[..^1]; // the prefix still says 4, only 3 bytes follow

        Assert.Equal(-1, BytesTensor.CountElements(data));
    }

    [Fact]
    public void CountElements_HugeLength_ReturnsMinusOneRatherThanOverflowing()
    {
        byte[] data = [0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3];

        Assert.Equal(-1, BytesTensor.CountElements(data));
    }

    [Fact]
    public void Elements_WalksEveryElementInOrder()
    {
        var data = Le.Strings("alpha", "", "é", "z");
        var seen = new List<string>();

        foreach (var element in BytesTensor.Elements(data))
        {
            seen.Add(Encoding.UTF8.GetString(element));
        }

        Assert.Equal(["alpha", "", "é", "z"], seen);
    }

    [Fact]
    public void Elements_EmptyData_YieldsNothing()
    {
        var count = 0;
        foreach (var element in BytesTensor.Elements([]))
        {
            count += element.Length + 1;
        }

        Assert.Equal(0, count);
    }

    [Fact]
    public void Elements_KeepsBinaryElementBytes()
    {
        byte[] raw = [0x00, 0xFF, 0x80];
        var data = Le.Bytes(raw, []);
        var seen = new List<byte[]>();

        foreach (var element in BytesTensor.Elements(data))
        {
            seen.Add(element.ToArray());
        }

        Assert.Equal(2, seen.Count);
        Assert.Equal(raw, seen[0]);
        Assert.Empty(seen[1]);
    }
}
