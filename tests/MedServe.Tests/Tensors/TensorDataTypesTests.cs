using System.Text;
using MedServe.Tensors;

namespace MedServe.Tests.Tensors;

public sealed class TensorDataTypesTests
{
    public static TheoryData<string, TensorDataType> WireNames => new()
    {
        { "BOOL", TensorDataType.Bool },
        { "UINT8", TensorDataType.UInt8 },
        { "UINT16", TensorDataType.UInt16 },
        { "UINT32", TensorDataType.UInt32 },
        { "UINT64", TensorDataType.UInt64 },
        { "INT8", TensorDataType.Int8 },
        { "INT16", TensorDataType.Int16 },
        { "INT32", TensorDataType.Int32 },
        { "INT64", TensorDataType.Int64 },
        { "FP16", TensorDataType.Fp16 },
        { "FP32", TensorDataType.Fp32 },
        { "FP64", TensorDataType.Fp64 },
        { "BYTES", TensorDataType.Bytes },
        { "BF16", TensorDataType.Bf16 },
    };

    public static TheoryData<string, TensorDataType> ConfigNames => new()
    {
        { "TYPE_BOOL", TensorDataType.Bool },
        { "TYPE_UINT8", TensorDataType.UInt8 },
        { "TYPE_UINT16", TensorDataType.UInt16 },
        { "TYPE_UINT32", TensorDataType.UInt32 },
        { "TYPE_UINT64", TensorDataType.UInt64 },
        { "TYPE_INT8", TensorDataType.Int8 },
        { "TYPE_INT16", TensorDataType.Int16 },
        { "TYPE_INT32", TensorDataType.Int32 },
        { "TYPE_INT64", TensorDataType.Int64 },
        { "TYPE_FP16", TensorDataType.Fp16 },
        { "TYPE_FP32", TensorDataType.Fp32 },
        { "TYPE_FP64", TensorDataType.Fp64 },
        { "TYPE_STRING", TensorDataType.Bytes },
        { "TYPE_BF16", TensorDataType.Bf16 },
    };

    [Theory]
    [MemberData(nameof(WireNames))]
    public void TryParseWireName_String_ParsesEveryWireName(string name, TensorDataType expected)
    {
        Assert.True(TensorDataTypes.TryParseWireName(name, out var type));
        Assert.Equal(expected, type);
    }

    [Theory]
    [MemberData(nameof(WireNames))]
    public void TryParseWireName_Utf8_ParsesEveryWireName(string name, TensorDataType expected)
    {
        Assert.True(TensorDataTypes.TryParseWireName(Encoding.UTF8.GetBytes(name).AsSpan(), out var type));
        Assert.Equal(expected, type);
    }

    [Theory]
    [MemberData(nameof(WireNames))]
    public void ToWireName_FormatsEveryType(string expected, TensorDataType type)
    {
        Assert.Equal(expected, type.ToWireName());
    }

    [Theory]
    [MemberData(nameof(ConfigNames))]
    public void TryParseConfigName_ParsesEveryConfigName(string name, TensorDataType expected)
    {
        Assert.True(TensorDataTypes.TryParseConfigName(name, out var type));
        Assert.Equal(expected, type);
    }

    [Theory]
    [MemberData(nameof(ConfigNames))]
    public void ToConfigName_FormatsEveryType(string expected, TensorDataType type)
    {
        Assert.Equal(expected, type.ToConfigName());
    }

    [Theory]
    [MemberData(nameof(WireNames))]
    public void TryParseConfigName_AcceptsBareWireNames(string name, TensorDataType expected)
    {
        Assert.True(TensorDataTypes.TryParseConfigName(name, out var type));
        Assert.Equal(expected, type);
    }

    [Fact]
    public void TypeString_IsBytesOnTheWireAndBytesIsTypeStringInConfigs()
    {
        Assert.True(TensorDataTypes.TryParseConfigName("TYPE_STRING", out var type));
        Assert.Equal("BYTES", type.ToWireName());
        Assert.Equal("TYPE_STRING", TensorDataType.Bytes.ToConfigName());
    }

    [Theory]
    [InlineData("fp32")]
    [InlineData("Fp32")]
    [InlineData("FLOAT32")]
    [InlineData("STRING")]
    [InlineData("INVALID")]
    [InlineData("")]
    [InlineData(" FP32")]
    public void TryParseWireName_RejectsUnknownOrMiscasedNames(string name)
    {
        Assert.False(TensorDataTypes.TryParseWireName(name, out var type));
        Assert.Equal(TensorDataType.Invalid, type);
        Assert.False(TensorDataTypes.TryParseWireName(Encoding.UTF8.GetBytes(name).AsSpan(), out var utf8Type));
        Assert.Equal(TensorDataType.Invalid, utf8Type);
    }

    [Fact]
    public void TryParseWireName_Null_ReturnsFalse()
    {
        Assert.False(TensorDataTypes.TryParseWireName((string?)null, out var type));
        Assert.Equal(TensorDataType.Invalid, type);
    }

    [Theory]
    [InlineData("TYPE_INVALID")]
    [InlineData("INVALID")]
    [InlineData("type_fp32")]
    [InlineData("TYPE_FLOAT")]
    [InlineData(null)]
    public void TryParseConfigName_RejectsUnknownNames(string? name)
    {
        Assert.False(TensorDataTypes.TryParseConfigName(name, out var type));
        Assert.Equal(TensorDataType.Invalid, type);
    }

    [Theory]
    [InlineData(TensorDataType.Bool, 1)]
    [InlineData(TensorDataType.UInt8, 1)]
    [InlineData(TensorDataType.Int8, 1)]
    [InlineData(TensorDataType.UInt16, 2)]
    [InlineData(TensorDataType.Int16, 2)]
    [InlineData(TensorDataType.Fp16, 2)]
    [InlineData(TensorDataType.Bf16, 2)]
    [InlineData(TensorDataType.UInt32, 4)]
    [InlineData(TensorDataType.Int32, 4)]
    [InlineData(TensorDataType.Fp32, 4)]
    [InlineData(TensorDataType.UInt64, 8)]
    [InlineData(TensorDataType.Int64, 8)]
    [InlineData(TensorDataType.Fp64, 8)]
    [InlineData(TensorDataType.Bytes, 0)]
    [InlineData(TensorDataType.Invalid, 0)]
    public void ElementSize_IsTheWidthOfOneElement(TensorDataType type, int expected)
    {
        Assert.Equal(expected, type.ElementSize());
    }
}
