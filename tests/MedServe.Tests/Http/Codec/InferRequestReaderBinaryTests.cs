using System.Runtime.InteropServices;
using System.Text;
using MedServe.Tensors;
using MedServe.Tests.Support;
using static MedServe.Tests.Http.Codec.RequestBodies;

namespace MedServe.Tests.Http.Codec;

public sealed class InferRequestReaderBinaryTests
{
    [Fact]
    public void BinaryInput_IsASliceOfTheBody_NotACopy()
    {
        var raw = Le.Fp32(1.5f, -2f, 3.25f);
        var (body, headerLength) = Binary(
            """{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","parameters":{"binary_data_size":12}}]}""", raw);

        using var request = Read(body, headerLength);

        var input = Assert.Single(request.Inputs);
        Assert.Equal(TensorDataType.Fp32, input.DataType);
        Assert.Equal([1L, 3L], input.Shape);
        Assert.Equal(raw, input.Data.ToArray());
        Assert.True(MemoryMarshal.TryGetArray(input.Data, out var segment));
        Assert.Same(body, segment.Array);
        Assert.Equal(headerLength, segment.Offset);
        Assert.Equal(12, segment.Count);
    }

    [Fact]
    public void SeveralBinaryInputs_TakeConsecutiveSlicesInInputOrder()
    {
        var first = Le.Int64(7, -7);
        var second = Le.Strings("scan", "");
        var (body, headerLength) = Binary(
            $$$"""
            {"inputs":[
              {"name":"a","shape":[2],"datatype":"INT64","parameters":{"binary_data_size":{{{first.Length}}}}},
              {"name":"j","shape":[1],"datatype":"FP32","data":[0.5]},
              {"name":"b","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":{{{second.Length}}}}}
            ]}
            """, first, second);

        using var request = Read(body, headerLength);

        Assert.Equal(3, request.Inputs.Count);
        Assert.Equal(first, request.Inputs[0].Data.ToArray());
        Assert.Equal(Le.Fp32(0.5f), request.Inputs[1].Data.ToArray());
        Assert.Equal(second, request.Inputs[2].Data.ToArray());
        Assert.True(MemoryMarshal.TryGetArray(request.Inputs[2].Data, out var segment));
        Assert.Same(body, segment.Array);
        Assert.Equal(headerLength + first.Length, segment.Offset);
        Assert.True(MemoryMarshal.TryGetArray(request.Inputs[1].Data, out var decoded));
        Assert.NotSame(body, decoded.Array);
    }

    [Fact]
    public void Bf16_TravelsInBinaryForm()
    {
        var raw = Le.Bf16(1f, -2f);
        var (body, headerLength) = Binary(
            """{"inputs":[{"name":"h","shape":[2],"datatype":"BF16","parameters":{"binary_data_size":4}}]}""", raw);

        using var request = Read(body, headerLength);

        Assert.Equal(TensorDataType.Bf16, request.Inputs[0].DataType);
        Assert.Equal(new byte[] { 0x80, 0x3F, 0x00, 0xC0 }, request.Inputs[0].Data.ToArray());
    }

    [Fact]
    public void BinaryDataSizeAsString_IsAccepted()
    {
        var (body, headerLength) = Binary(
            """{"inputs":[{"name":"x","shape":[2],"datatype":"UINT8","parameters":{"binary_data_size":"2"}}]}""", [9, 8]);

        using var request = Read(body, headerLength);

        Assert.Equal(new byte[] { 9, 8 }, request.Inputs[0].Data.ToArray());
    }

    [Fact]
    public void ZeroSizedBinaryInput_IsEmpty()
    {
        var (body, headerLength) = Binary(
            """{"inputs":[{"name":"x","shape":[0],"datatype":"FP32","parameters":{"binary_data_size":0}}]}""");

        using var request = Read(body, headerLength);

        Assert.True(request.Inputs[0].Data.IsEmpty);
    }

    [Fact]
    public void LeftoverBytesAfterTheBinaryInputs_AreInvalidArgument()
    {
        var (body, headerLength) = Binary(
            """{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}""",
            Le.Fp32(1f), [0xAA, 0xBB]);

        var error = Invalid(body, headerLength);

        Assert.Contains("add up to 4 bytes", error.Message);
        Assert.Contains("6 bytes", error.Message);
    }

    [Fact]
    public void BinaryBytesWithNoBinaryInput_AreInvalidArgument()
    {
        var (body, headerLength) = Binary(One("FP32", "[1]", "[1]"), [1, 2, 3]);

        var error = Invalid(body, headerLength);

        Assert.Contains("add up to 0 bytes", error.Message);
    }

    [Fact]
    public void TooFewBinaryBytes_AreInvalidArgumentNamingTheInput()
    {
        var (body, headerLength) = Binary(
            """{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}},{"name":"b","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}""",
            Le.Fp32(1f, 2f));

        var error = Invalid(body, headerLength);

        Assert.Contains("'b'", error.Message);
        Assert.Contains("binary_data_size 8", error.Message);
        Assert.Contains("only 4 bytes", error.Message);
    }

    [Fact]
    public void BinaryDataSizeNotMatchingTheShape_IsInvalidArgumentNamingTheInput()
    {
        var (body, headerLength) = Binary(
            """{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":4}}]}""", Le.Fp32(1f));

        var error = Invalid(body, headerLength);

        Assert.Contains("'x'", error.Message);
        Assert.Contains("4 bytes", error.Message);
        Assert.Contains("needs 8", error.Message);
    }

    [Fact]
    public void MalformedBinaryBytesTensor_IsInvalidArgument()
    {
        var raw = Le.Strings("abc")[..^1];
        var (body, headerLength) = Binary(
            $$$"""{"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":{{{raw.Length}}}}}]}""", raw);

        var error = Invalid(body, headerLength);

        Assert.Contains("'s'", error.Message);
        Assert.Contains("malformed", error.Message);
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("1.5")]
    [InlineData("\"four\"")]
    [InlineData("true")]
    public void BadBinaryDataSize_IsInvalidArgument(string size)
    {
        var (body, headerLength) = Binary(
            $$$"""{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":{{{size}}}}}]}""", Le.Fp32(1f));

        var error = Invalid(body, headerLength);

        Assert.Contains("binary_data_size", error.Message);
    }

    [Fact]
    public void HeaderLengthLargerThanTheBody_IsInvalidArgument()
    {
        var body = Encoding.UTF8.GetBytes(One("FP32", "[1]", "[1]"));

        var error = Invalid(body, body.Length + 1);

        Assert.Contains("Inference-Header-Content-Length", error.Message);
        Assert.Contains($"{body.Length + 1}", error.Message);
    }

    [Fact]
    public void NegativeHeaderLength_IsInvalidArgument()
    {
        var body = Encoding.UTF8.GetBytes(One("FP32", "[1]", "[1]"));

        var error = Invalid(body, -1);

        Assert.Contains("Inference-Header-Content-Length", error.Message);
    }

    [Fact]
    public void HeaderLengthCuttingTheJson_IsInvalidArgument()
    {
        var body = Encoding.UTF8.GetBytes(One("FP32", "[1]", "[1]"));

        var error = Invalid(body, body.Length - 3);

        Assert.Contains("malformed JSON", error.Message);
    }

    [Fact]
    public void BinaryInputWithoutHeaderLength_IsInvalidArgument()
    {
        var (body, _) = Binary(
            """{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}""", Le.Fp32(1f));

        Invalid(body, null);
    }

    [Fact]
    public void HeaderLengthEqualToTheBody_ReadsAPlainJsonRequest()
    {
        var body = Encoding.UTF8.GetBytes(One("INT32", "[2]", "[5,6]"));

        using var request = Read(body, body.Length);

        Assert.Equal(Le.Int32(5, 6), request.Inputs[0].Data.ToArray());
    }
}
