using MedServe.Http.Codec;
using MedServe.Inference;
using MedServe.Tensors;

namespace MedServe.Tests.Inference;

/// <summary>A claimed shape is the client's word: it must not overflow checks or size allocations.</summary>
public sealed class HugeShapeTests
{
    [Theory]
    [InlineData(TensorDataType.Int64, 1L << 62, 0)]
    [InlineData(TensorDataType.Fp32, (1L << 62) + 1, 4)]
    public void CheckData_ShapeWhoseByteCountOverflows_IsRejected(TensorDataType type, long dim, int bytes)
    {
        var input = new InputTensor("x", type, [dim], new byte[bytes]);

        var error = Assert.Throws<InferenceException>(() => RequestValidator.CheckData(input));

        Assert.Equal(InferenceErrorKind.InvalidArgument, error.Kind);
        Assert.Contains("input 'x'", error.Message);
    }

    [Fact]
    public void Read_HugeShapeWithEmptyBinaryData_IsRejectedBeforeTheBackend()
    {
        var json = "{\"inputs\":[{\"name\":\"x\",\"shape\":[4611686018427387904],\"datatype\":\"INT64\",\"parameters\":{\"binary_data_size\":0}}]}";
        var body = System.Text.Encoding.UTF8.GetBytes(json);
        using var request = new InferenceRequest();

        var error = Assert.Throws<InferenceException>(() => InferRequestReader.Read(body, body.Length, request));

        Assert.Contains("input 'x' has 0 bytes of data", error.Message);
    }

    [Theory]
    [InlineData(100_000_000)]
    [InlineData(600_000_000)]
    public void Read_JsonDataFarShorterThanItsShape_IsInvalidNotOutOfMemory(long dim)
    {
        var json = $"{{\"inputs\":[{{\"name\":\"x\",\"shape\":[{dim}],\"datatype\":\"FP32\",\"data\":[1]}}]}}";
        using var request = new InferenceRequest();
        var before = GC.GetTotalAllocatedBytes(precise: true);

        var error = Assert.Throws<InferenceException>(() => InferRequestReader.Read(System.Text.Encoding.UTF8.GetBytes(json), null, request));

        Assert.Equal(InferenceErrorKind.InvalidArgument, error.Kind);
        Assert.Contains($"has 1 data elements, but shape needs {dim}", error.Message);
        Assert.True(GC.GetTotalAllocatedBytes(precise: true) - before < 16 * 1024 * 1024, "an 80-byte request must not allocate by its claimed shape");
    }

    [Fact]
    public void Read_TextAfterTheJsonObjectWithoutHeaderLength_IsRejected()
    {
        var json = "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}]} garbage {";
        using var request = new InferenceRequest();

        var error = Assert.Throws<InferenceException>(() => InferRequestReader.Read(System.Text.Encoding.UTF8.GetBytes(json), null, request));

        Assert.Contains("malformed JSON", error.Message);
    }
}
