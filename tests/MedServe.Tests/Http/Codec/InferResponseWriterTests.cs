using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using MedServe.Http.Codec;
using MedServe.Inference;
using MedServe.Tensors;
using MedServe.Tests.Support;
using Microsoft.AspNetCore.Http;

namespace MedServe.Tests.Http.Codec;

public sealed class InferResponseWriterTests
{
    private sealed record Written(HttpResponse Response, byte[] Body)
    {
        public int JsonLength => Response.Headers.TryGetValue(InferResponseWriter.HeaderLengthHeader, out var value)
            ? int.Parse(value.ToString(), System.Globalization.CultureInfo.InvariantCulture)
            : Body.Length;

        public string Json => Encoding.UTF8.GetString(Body, 0, JsonLength);

        public byte[] BinaryPart => Body[JsonLength..];
    }

    private static async Task<Written> WriteAsync(InferenceRequest request, params OutputTensor[] outputs)
    {
        var context = new DefaultHttpContext();
        var body = new MemoryStream();
        context.Response.Body = body;
        using var result = new InferenceResult(outputs, null) { ModelVersion = 1 };

        await InferResponseWriter.WriteAsync(context.Response, "densenet", request, result);

        return new Written(context.Response, body.ToArray());
    }

    private static Task<Written> WriteAsync(params OutputTensor[] outputs) => WriteAsync(new InferenceRequest(), outputs);

    private static OutputTensor Output(string name, TensorDataType type, long[] shape, byte[] data) => new(name, type, shape, data);

    /// <summary>The JSON text of the first output's data array.</summary>
    private static async Task<string> DataJsonAsync(TensorDataType type, long[] shape, byte[] data)
    {
        var written = await WriteAsync(Output("y", type, shape, data));
        using var document = JsonDocument.Parse(written.Json);
        return document.RootElement.GetProperty("outputs")[0].GetProperty("data").GetRawText();
    }

    [Fact]
    public async Task DefaultHttpContextWithAMemoryStream_ReceivesTheFlushedBody()
    {
        var written = await WriteAsync(Output("y", TensorDataType.Int32, [1], Le.Int32(3)));

        Assert.NotEmpty(written.Body);
        Assert.Equal(written.Body.Length, written.Response.ContentLength);
        Assert.Equal(StatusCodes.Status200OK, written.Response.StatusCode);
    }

    [Fact]
    public async Task JsonResponse_HasModelNameVersionAndOutputHeaders()
    {
        using var request = new InferenceRequest { Id = "req-\"1\"" };
        var written = await WriteAsync(request, Output("probs", TensorDataType.Fp32, [1, 2], Le.Fp32(0.25f, 0.75f)));

        Assert.Equal("application/json", written.Response.ContentType);
        Assert.False(written.Response.Headers.ContainsKey(InferResponseWriter.HeaderLengthHeader));
        using var document = JsonDocument.Parse(written.Body);
        var root = document.RootElement;
        Assert.Equal("req-\"1\"", root.GetProperty("id").GetString());
        Assert.Equal("densenet", root.GetProperty("model_name").GetString());
        Assert.Equal("1", root.GetProperty("model_version").GetString());
        var output = Assert.Single(root.GetProperty("outputs").EnumerateArray());
        Assert.Equal("probs", output.GetProperty("name").GetString());
        Assert.Equal("FP32", output.GetProperty("datatype").GetString());
        Assert.Equal([1L, 2L], output.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
        Assert.Equal([0.25, 0.75], output.GetProperty("data").EnumerateArray().Select(d => d.GetDouble()));
        Assert.False(output.TryGetProperty("parameters", out _));
    }

    [Fact]
    public async Task RequestWithoutId_WritesNoId()
    {
        var written = await WriteAsync(Output("y", TensorDataType.UInt8, [1], [1]));

        using var document = JsonDocument.Parse(written.Body);
        Assert.False(document.RootElement.TryGetProperty("id", out _));
    }

    [Fact]
    public async Task Bool_IsWrittenAsJsonBooleans() =>
        Assert.Equal("[true,false,true]", await DataJsonAsync(TensorDataType.Bool, [3], [1, 0, 2]));

    [Fact]
    public async Task UInt8_IsWrittenUnsigned() =>
        Assert.Equal("[0,255,7]", await DataJsonAsync(TensorDataType.UInt8, [3], Le.UInt8(0, 255, 7)));

    [Fact]
    public async Task Int8_IsWrittenSigned() =>
        Assert.Equal("[-128,127,-1]", await DataJsonAsync(TensorDataType.Int8, [3], Le.Int8(-128, 127, -1)));

    [Fact]
    public async Task UInt16_IsReadLittleEndian() =>
        Assert.Equal("[65535,258]", await DataJsonAsync(TensorDataType.UInt16, [2], Le.UInt16(65535, 258)));

    [Fact]
    public async Task Int16_IsReadLittleEndian() =>
        Assert.Equal("[-32768,32767]", await DataJsonAsync(TensorDataType.Int16, [2], Le.Int16(short.MinValue, short.MaxValue)));

    [Fact]
    public async Task UInt32_IsReadLittleEndian() =>
        Assert.Equal("[4294967295,16909060]", await DataJsonAsync(TensorDataType.UInt32, [2], Le.UInt32(uint.MaxValue, 16909060)));

    [Fact]
    public async Task Int32_IsReadLittleEndian() =>
        Assert.Equal("[-2147483648,2147483647,0]", await DataJsonAsync(TensorDataType.Int32, [3], Le.Int32(int.MinValue, int.MaxValue, 0)));

    [Fact]
    public async Task UInt64_IsReadLittleEndian() =>
        Assert.Equal("[18446744073709551615,1]", await DataJsonAsync(TensorDataType.UInt64, [2], Le.UInt64(ulong.MaxValue, 1)));

    [Fact]
    public async Task Int64_IsReadLittleEndian() =>
        Assert.Equal("[-9223372036854775808,9223372036854775807]", await DataJsonAsync(TensorDataType.Int64, [2], Le.Int64(long.MinValue, long.MaxValue)));

    [Fact]
    public async Task Fp16_IsWrittenThroughHalf() =>
        Assert.Equal("[1.5,-0.25,65504]", await DataJsonAsync(TensorDataType.Fp16, [3], Le.Fp16((Half)1.5, (Half)(-0.25), Half.MaxValue)));

    [Fact]
    public async Task Bf16_IsWrittenAsTheUpperHalfOfAnFp32() =>
        Assert.Equal("[1,-2.5]", await DataJsonAsync(TensorDataType.Bf16, [2], Le.Bf16(1f, -2.5f)));

    [Fact]
    public async Task Fp32_IsWrittenShortest() =>
        Assert.Equal("[0.1,-2.25,3]", await DataJsonAsync(TensorDataType.Fp32, [3], Le.Fp32(0.1f, -2.25f, 3f)));

    [Fact]
    public async Task Fp64_IsWrittenAtFullPrecision() =>
        Assert.Equal("[0.1,-1E+300]", await DataJsonAsync(TensorDataType.Fp64, [2], Le.Fp64(0.1, -1e300)));

    [Fact]
    public async Task Bytes_AreWrittenAsStrings()
    {
        var written = await WriteAsync(Output("label", TensorDataType.Bytes, [3], Le.Strings("benign", "", "é\"q")));

        using var document = JsonDocument.Parse(written.Body);
        var data = document.RootElement.GetProperty("outputs")[0].GetProperty("data");
        Assert.Equal(["benign", "", "é\"q"], data.EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public async Task Bytes_NotUtf8_AreInvalidArgumentSuggestingBinary()
    {
        var output = Output("raw", TensorDataType.Bytes, [1], Le.Bytes([0xFF, 0xFE]));

        var error = await Assert.ThrowsAsync<InferenceException>(() => WriteAsync(output));

        Assert.Equal(InferenceErrorKind.InvalidArgument, error.Kind);
        Assert.Contains("'raw'", error.Message);
        Assert.Contains("binary_data", error.Message);
    }

    [Theory]
    [InlineData(TensorDataType.Fp32)]
    [InlineData(TensorDataType.Fp64)]
    [InlineData(TensorDataType.Fp16)]
    [InlineData(TensorDataType.Bf16)]
    public async Task NonFiniteFloats_AreWrittenAsNaNAndInfinityLiterals(TensorDataType type)
    {
        var data = type switch
        {
            TensorDataType.Fp32 => Le.Fp32(float.NaN, float.PositiveInfinity, float.NegativeInfinity, 1.5f),
            TensorDataType.Fp64 => Le.Fp64(double.NaN, double.PositiveInfinity, double.NegativeInfinity, 1.5),
            TensorDataType.Fp16 => Le.Fp16(Half.NaN, Half.PositiveInfinity, Half.NegativeInfinity, (Half)1.5),
            _ => Le.Bf16(float.NaN, float.PositiveInfinity, float.NegativeInfinity, 1.5f),
        };

        var written = await WriteAsync(Output("y", type, [4], data));

        Assert.Contains("\"data\":[NaN,Infinity,-Infinity,1.5]", written.Json);
    }

    [Fact]
    public async Task SeveralOutputs_AreWrittenInResultOrder()
    {
        var written = await WriteAsync(
            Output("b", TensorDataType.Int64, [1], Le.Int64(2)),
            Output("a", TensorDataType.Bool, [1], [1]));

        using var document = JsonDocument.Parse(written.Body);
        var outputs = document.RootElement.GetProperty("outputs").EnumerateArray().ToList();
        Assert.Equal(["b", "a"], outputs.Select(o => o.GetProperty("name").GetString()));
        Assert.Equal(2, outputs[0].GetProperty("data")[0].GetInt64());
        Assert.True(outputs[1].GetProperty("data")[0].GetBoolean());
    }

    [Fact]
    public async Task BinaryDataOutput_SendsEveryOutputAfterTheJsonHeader()
    {
        using var request = new InferenceRequest { Parameters = new() { ["binary_data_output"] = InferenceParameter.Of(true) } };
        var probs = Le.Fp32(0.25f, 0.75f);
        var label = Le.Strings("malignant");

        var written = await WriteAsync(request,
            Output("probs", TensorDataType.Fp32, [1, 2], probs),
            Output("label", TensorDataType.Bytes, [1], label));

        Assert.Equal("application/octet-stream", written.Response.ContentType);
        var headerLength = written.JsonLength;
        Assert.Equal(Encoding.UTF8.GetByteCount(written.Json), headerLength);
        Assert.Equal('}', written.Json[^1]);
        Assert.Equal(headerLength + probs.Length + label.Length, written.Response.ContentLength);
        Assert.Equal(written.Body.Length, written.Response.ContentLength);
        Assert.Equal([.. probs, .. label], written.BinaryPart);

        using var document = JsonDocument.Parse(written.Json);
        var outputs = document.RootElement.GetProperty("outputs").EnumerateArray().ToList();
        Assert.Equal(probs.Length, outputs[0].GetProperty("parameters").GetProperty("binary_data_size").GetInt32());
        Assert.Equal(label.Length, outputs[1].GetProperty("parameters").GetProperty("binary_data_size").GetInt32());
        Assert.All(outputs, o => Assert.False(o.TryGetProperty("data", out _)));
        Assert.Equal("FP32", outputs[0].GetProperty("datatype").GetString());
        Assert.Equal([1L, 2L], outputs[0].GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
    }

    [Fact]
    public async Task BinaryDataOutputAsString_IsHonoured()
    {
        using var request = new InferenceRequest { Parameters = new() { ["binary_data_output"] = InferenceParameter.Of("true") } };

        var written = await WriteAsync(request, Output("y", TensorDataType.Int32, [1], Le.Int32(9)));

        Assert.Equal("application/octet-stream", written.Response.ContentType);
        Assert.Equal(Le.Int32(9), written.BinaryPart);
    }

    [Fact]
    public async Task BinaryDataOutputFalse_WritesJson()
    {
        using var request = new InferenceRequest { Parameters = new() { ["binary_data_output"] = InferenceParameter.Of(false) } };

        var written = await WriteAsync(request, Output("y", TensorDataType.Int32, [1], Le.Int32(9)));

        Assert.Equal("application/json", written.Response.ContentType);
        Assert.Contains("\"data\":[9]", written.Json);
    }

    [Fact]
    public async Task PerOutputBinaryDataFalse_OverridesBinaryDataOutput()
    {
        using var request = new InferenceRequest
        {
            Parameters = new() { ["binary_data_output"] = InferenceParameter.Of(true) },
            Outputs =
            [
                new RequestedOutput("probs") { Parameters = new() { ["binary_data"] = InferenceParameter.Of(false) } },
                new RequestedOutput("logits"),
            ],
        };
        var logits = Le.Fp64(-1.5, 2.5);

        var written = await WriteAsync(request,
            Output("probs", TensorDataType.Fp32, [2], Le.Fp32(0.25f, 0.75f)),
            Output("logits", TensorDataType.Fp64, [2], logits));

        Assert.Equal("application/octet-stream", written.Response.ContentType);
        Assert.Equal(logits, written.BinaryPart);
        using var document = JsonDocument.Parse(written.Json);
        var outputs = document.RootElement.GetProperty("outputs");
        Assert.Equal([0.25, 0.75], outputs[0].GetProperty("data").EnumerateArray().Select(e => e.GetDouble()));
        Assert.False(outputs[0].TryGetProperty("parameters", out _));
        Assert.Equal(16, outputs[1].GetProperty("parameters").GetProperty("binary_data_size").GetInt32());
    }

    [Fact]
    public async Task PerOutputBinaryDataTrue_SendsOnlyThatOutputInBinary()
    {
        using var request = new InferenceRequest
        {
            Outputs =
            [
                new RequestedOutput("a"),
                new RequestedOutput("b") { Parameters = new() { ["binary_data"] = InferenceParameter.Of(true) } },
            ],
        };
        var b = Le.UInt16(1, 513);

        var written = await WriteAsync(request,
            Output("a", TensorDataType.Int8, [1], Le.Int8(-3)),
            Output("b", TensorDataType.UInt16, [2], b));

        Assert.Equal(b, written.BinaryPart);
        Assert.Equal(513, BinaryPrimitives.ReadUInt16LittleEndian(written.BinaryPart.AsSpan(2)));
        Assert.Contains("\"data\":[-3]", written.Json);
        Assert.Equal(written.Json.Length.ToString(System.Globalization.CultureInfo.InvariantCulture),
            written.Response.Headers[InferResponseWriter.HeaderLengthHeader].ToString());
    }

    [Fact]
    public async Task EmptyBinaryOutput_StillUsesTheBinaryFraming()
    {
        using var request = new InferenceRequest { Parameters = new() { ["binary_data_output"] = InferenceParameter.Of(true) } };

        var written = await WriteAsync(request, Output("y", TensorDataType.Fp32, [0], []));

        Assert.Equal("application/octet-stream", written.Response.ContentType);
        Assert.Equal(written.Body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture),
            written.Response.Headers[InferResponseWriter.HeaderLengthHeader].ToString());
        Assert.Contains("\"binary_data_size\":0", written.Json);
    }

    [Fact]
    public async Task LargeOutput_IsWrittenWhole()
    {
        var values = Enumerable.Range(0, 20_000).Select(i => (float)i).ToArray();
        using var request = new InferenceRequest { Parameters = new() { ["binary_data_output"] = InferenceParameter.Of(true) } };

        var written = await WriteAsync(request, Output("y", TensorDataType.Fp32, [values.Length], Le.Fp32(values)));

        Assert.Equal(Le.Fp32(values), written.BinaryPart);

        var json = await WriteAsync(Output("y", TensorDataType.Fp32, [values.Length], Le.Fp32(values)));
        using var document = JsonDocument.Parse(json.Body);
        var data = document.RootElement.GetProperty("outputs")[0].GetProperty("data");
        Assert.Equal(values.Length, data.GetArrayLength());
        Assert.Equal(19_999f, data[19_999].GetSingle());
    }
}
