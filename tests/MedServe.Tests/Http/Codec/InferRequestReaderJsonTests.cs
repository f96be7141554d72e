using System.Buffers.Binary;
using System.Runtime.InteropServices;
using MedServe.Inference;
using MedServe.Tensors;
using MedServe.Tests.Support;
using static MedServe.Tests.Http.Codec.RequestBodies;

namespace MedServe.Tests.Http.Codec;

public sealed class InferRequestReaderJsonTests
{
    private static byte[] Decode(string datatype, string shape, string data)
    {
        using var request = Read(One(datatype, shape, data));
        var input = Assert.Single(request.Inputs);
        Assert.Equal("x", input.Name);
        Assert.True(TensorDataTypes.TryParseWireName(datatype, out var type));
        Assert.Equal(type, input.DataType);
        return input.Data.ToArray();
    }

    [Fact]
    public void Bool_TrueAndFalse_DecodeToOneAndZero()
    {
        Assert.Equal(Le.Bools(true, false, false), Decode("BOOL", "[3]", "[true,false,false]"));
        Assert.Equal(Le.Bools(true, false, false, true), Decode("BOOL", "[2,2]", "[[true,false],[false,true]]"));
    }

    [Fact]
    public void UInt8_DecodesFullRange()
    {
        Assert.Equal(Le.UInt8(0, 255, 7), Decode("UINT8", "[3]", "[0,255,7]"));
        Assert.Equal(Le.UInt8(0, 255, 7, 8), Decode("UINT8", "[2,2]", "[[0,255],[7,8]]"));
    }

    [Fact]
    public void UInt16_DecodesLittleEndian()
    {
        var data = Decode("UINT16", "[3]", "[0,65535,258]");
        Assert.Equal(Le.UInt16(0, 65535, 258), data);
        Assert.Equal(new byte[] { 2, 1 }, data[4..6]);
        Assert.Equal(Le.UInt16(1, 2, 3, 4), Decode("UINT16", "[2,2]", "[[1,2],[3,4]]"));
    }

    [Fact]
    public void UInt32_DecodesFullRange()
    {
        var data = Decode("UINT32", "[2]", "[4294967295,16909060]");
        Assert.Equal(uint.MaxValue, BinaryPrimitives.ReadUInt32LittleEndian(data));
        Assert.Equal(new byte[] { 4, 3, 2, 1 }, data[4..]);
        Assert.Equal(Le.UInt32(1, 2, 3, 4, 5, 6), Decode("UINT32", "[2,3]", "[[1,2,3],[4,5,6]]"));
    }

    [Fact]
    public void UInt64_DecodesFullRange()
    {
        Assert.Equal(Le.UInt64(ulong.MaxValue, 0), Decode("UINT64", "[2]", "[18446744073709551615,0]"));
        Assert.Equal(Le.UInt64(1, 2), Decode("UINT64", "[2,1]", "[[1],[2]]"));
    }

    [Fact]
    public void Int8_DecodesTwosComplement()
    {
        var data = Decode("INT8", "[3]", "[-128,127,-1]");
        Assert.Equal(Le.Int8(-128, 127, -1), data);
        Assert.Equal(0xFF, data[2]);
        Assert.Equal(Le.Int8(-1, 1), Decode("INT8", "[1,2]", "[[-1,1]]"));
    }

    [Fact]
    public void Int16_DecodesFullRange()
    {
        Assert.Equal(Le.Int16(short.MinValue, short.MaxValue, -2), Decode("INT16", "[3]", "[-32768,32767,-2]"));
        Assert.Equal(Le.Int16(-1, 0, 1, 2), Decode("INT16", "[2,2]", "[[-1,0],[1,2]]"));
    }

    [Fact]
    public void Int32_DecodesFullRange()
    {
        var data = Decode("INT32", "[3]", "[-2147483648,2147483647,-2]");
        Assert.Equal([int.MinValue, int.MaxValue, -2], MemoryMarshal.Cast<byte, int>(data).ToArray());
        Assert.Equal(Le.Int32(int.MinValue, int.MaxValue, -2), data);
        Assert.Equal(Le.Int32(1, 2, 3, 4, 5, 6, 7, 8), Decode("INT32", "[2,2,2]", "[[[1,2],[3,4]],[[5,6],[7,8]]]"));
    }

    [Fact]
    public void Int64_DecodesFullRange()
    {
        Assert.Equal(Le.Int64(long.MinValue, long.MaxValue), Decode("INT64", "[2]", "[-9223372036854775808,9223372036854775807]"));
        Assert.Equal(Le.Int64(-5, 5), Decode("INT64", "[2,1]", "[[-5],[5]]"));
    }

    [Fact]
    public void Fp16_DecodesThroughHalf()
    {
        var data = Decode("FP16", "[4]", "[1.5,-0.25,65504,0.1]");
        Assert.Equal(Le.Fp16((Half)1.5, (Half)(-0.25), Half.MaxValue, (Half)0.1), data);
        Assert.Equal((Half)0.1, BinaryPrimitives.ReadHalfLittleEndian(data.AsSpan(6)));
        Assert.Equal(Le.Fp16((Half)1, (Half)2), Decode("FP16", "[1,2]", "[[1,2]]"));
    }

    [Fact]
    public void Fp32_DecodesNumbersAndIntegers()
    {
        var data = Decode("FP32", "[4]", "[1.5,-2.25,3,1e-3]");
        Assert.Equal(Le.Fp32(1.5f, -2.25f, 3f, 0.001f), data);
        Assert.Equal([1.5f, -2.25f, 3f, 0.001f], MemoryMarshal.Cast<byte, float>(data).ToArray());
        Assert.Equal(Le.Fp32(0.5f, 1.5f, 2.5f, 3.5f), Decode("FP32", "[2,2]", "[[0.5,1.5],[2.5,3.5]]"));
    }

    [Fact]
    public void Fp64_DecodesAtFullPrecision()
    {
        Assert.Equal(Le.Fp64(0.1, -1e300, double.Epsilon), Decode("FP64", "[3]", "[0.1,-1e300,4.9406564584124654E-324]"));
        Assert.Equal(Le.Fp64(0.1, 0.2), Decode("FP64", "[2,1]", "[[0.1],[0.2]]"));
    }

    [Fact]
    public void Bytes_StringsBecomeLengthPrefixedUtf8()
    {
        var data = Decode("BYTES", "[3]", """["ab","","é"]""");
        Assert.Equal(Le.Strings("ab", "", "é"), data);
        Assert.Equal(2, BinaryPrimitives.ReadInt32LittleEndian(data));
        Assert.Equal(0, BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(6)));
        Assert.Equal(2, BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(10)));
        Assert.Equal(new byte[] { 0xC3, 0xA9 }, data[14..]);
    }

    [Fact]
    public void Bytes_NestedDataAndEscapes_AreUnescaped()
    {
        var data = Decode("BYTES", "[2,1]", """[["a\"b\u00e9"],["line\nbreak"]]""");
        Assert.Equal(Le.Strings("a\"bé", "line\nbreak"), data);
    }

    [Fact]
    public void Bytes_LongStrings_GrowTheBuffer()
    {
        var longText = new string('x', 5000);
        Assert.Equal(Le.Strings(longText, "y"), Decode("BYTES", "[2]", $"""["{longText}","y"]"""));
    }

    [Theory]
    [InlineData("BOOL", "[true,false,true,false]", "[[true,false],[true,false]]")]
    [InlineData("UINT8", "[1,2,3,4]", "[[1,2],[3,4]]")]
    [InlineData("UINT16", "[1,2,3,4]", "[[1,2],[3,4]]")]
    [InlineData("UINT32", "[1,2,3,4]", "[[1,2],[3,4]]")]
    [InlineData("UINT64", "[1,2,3,4]", "[[1,2],[3,4]]")]
    [InlineData("INT8", "[-1,2,-3,4]", "[[-1,2],[-3,4]]")]
    [InlineData("INT16", "[-1,2,-3,4]", "[[-1,2],[-3,4]]")]
    [InlineData("INT32", "[-1,2,-3,4]", "[[-1,2],[-3,4]]")]
    [InlineData("INT64", "[-1,2,-3,4]", "[[-1,2],[-3,4]]")]
    [InlineData("FP16", "[0.5,1,-2,4]", "[[0.5,1],[-2,4]]")]
    [InlineData("FP32", "[0.5,1,-2,4]", "[[0.5,1],[-2,4]]")]
    [InlineData("FP64", "[0.5,1,-2,4]", "[[0.5,1],[-2,4]]")]
    [InlineData("BYTES", """["a","bb","","d"]""", """[["a","bb"],["","d"]]""")]
    public void NestedData_DecodesLikeFlatRowMajorData(string datatype, string flat, string nested)
    {
        var fromFlat = Decode(datatype, "[2,2]", flat);
        var fromNested = Decode(datatype, "[2,2]", nested);

        Assert.NotEmpty(fromFlat);
        Assert.Equal(fromFlat, fromNested);
    }

    [Fact]
    public void LoneScalar_IsAOneElementTensor()
    {
        Assert.Equal(Le.Int32(42), Decode("INT32", "[1]", "42"));
        Assert.Equal(Le.Fp32(2.5f), Decode("FP32", "[]", "2.5"));
    }

    [Fact]
    public void EmptyShape_DecodesEmptyData()
    {
        Assert.Empty(Decode("FP32", "[0,3]", "[]"));
    }

    [Theory]
    [InlineData("UINT8", "300")]
    [InlineData("UINT8", "-1")]
    [InlineData("UINT16", "65536")]
    [InlineData("UINT32", "-1")]
    [InlineData("UINT32", "4294967296")]
    [InlineData("UINT64", "18446744073709551616")]
    [InlineData("UINT64", "1.5")]
    [InlineData("INT8", "128")]
    [InlineData("INT8", "-129")]
    [InlineData("INT16", "32768")]
    [InlineData("INT16", "-32769")]
    [InlineData("INT32", "1.5")]
    [InlineData("INT32", "2147483648")]
    [InlineData("INT32", "-2147483649")]
    [InlineData("INT64", "9223372036854775808")]
    [InlineData("INT64", "\"1\"")]
    [InlineData("BOOL", "1")]
    [InlineData("BOOL", "\"true\"")]
    [InlineData("FP32", "\"1.5\"")]
    [InlineData("FP64", "null")]
    [InlineData("FP16", "true")]
    [InlineData("BYTES", "5")]
    [InlineData("BYTES", "{}")]
    public void OutOfRangeOrWrongKindElement_IsInvalidArgumentNamingTheInput(string datatype, string badElement)
    {
        var json = One(datatype, "[2]", $"[{(datatype == "BYTES" ? "\"ok\"" : datatype == "BOOL" ? "true" : "0")},{badElement}]", name: "pixels");

        var error = Invalid(json);

        Assert.Contains("'pixels'", error.Message);
        Assert.Contains("element 1", error.Message);
        Assert.Contains(datatype, error.Message);
    }

    [Fact]
    public void Bf16_InJson_IsInvalidArgument()
    {
        var error = Invalid(One("BF16", "[1]", "[1.0]", name: "h"));

        Assert.Contains("'h'", error.Message);
        Assert.Contains("binary", error.Message);
    }

    [Fact]
    public void DataNotFillingTheShape_IsInvalidArgument()
    {
        var error = Invalid(One("FP32", "[2,2]", "[1,2,3]", name: "image"));

        Assert.Contains("'image'", error.Message);
        Assert.Contains("3", error.Message);
        Assert.Contains("4", error.Message);
    }

    [Fact]
    public void TooMuchData_IsInvalidArgument()
    {
        var error = Invalid(One("INT32", "[2]", "[[1,2],[3]]", name: "ids"));

        Assert.Contains("'ids'", error.Message);
        Assert.Contains("more data elements", error.Message);
    }

    [Theory]
    [InlineData("FLOAT32")]
    [InlineData("fp32")]
    [InlineData("TYPE_FP32")]
    [InlineData("INVALID")]
    public void UnknownDatatype_IsInvalidArgumentNamingInputAndType(string datatype)
    {
        var error = Invalid(One(datatype, "[1]", "[1]", name: "age"));

        Assert.Contains("'age'", error.Message);
        Assert.Contains($"'{datatype}'", error.Message);
    }

    [Fact]
    public void MissingName_IsInvalidArgument()
    {
        var error = Invalid("""{"inputs":[{"shape":[1],"datatype":"FP32","data":[1]}]}""");

        Assert.Contains("inputs[0]", error.Message);
        Assert.Contains("'name'", error.Message);
    }

    [Fact]
    public void MissingShape_IsInvalidArgument()
    {
        var error = Invalid("""{"inputs":[{"name":"x","datatype":"FP32","data":[1]}]}""");

        Assert.Contains("'x'", error.Message);
        Assert.Contains("'shape'", error.Message);
    }

    [Fact]
    public void MissingDatatype_IsInvalidArgument()
    {
        var error = Invalid("""{"inputs":[{"name":"x","shape":[1],"data":[1]}]}""");

        Assert.Contains("'x'", error.Message);
        Assert.Contains("'datatype'", error.Message);
    }

    [Fact]
    public void MissingDataAndBinarySize_IsInvalidArgument()
    {
        var error = Invalid("""{"inputs":[{"name":"x","shape":[1],"datatype":"FP32"}]}""");

        Assert.Contains("'x'", error.Message);
        Assert.Contains("neither", error.Message);
    }

    [Theory]
    [InlineData("[-1]")]
    [InlineData("[1.5]")]
    [InlineData("[\"2\"]")]
    [InlineData("3")]
    public void BadShape_IsInvalidArgument(string shape)
    {
        var error = Invalid($$"""{"inputs":[{"name":"x","shape":{{shape}},"datatype":"FP32","data":[1]}]}""");

        Assert.Contains("inputs[0].shape", error.Message);
    }

    [Fact]
    public void SecondInput_IsNamedByItsPosition()
    {
        var error = Invalid("""{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]},{"name":5}]}""");

        Assert.Contains("inputs[1].name", error.Message);
    }

    [Theory]
    [InlineData("{\"inputs\":[")]
    [InlineData("{\"inputs\":[{\"name\":\"x\",}]}")]
    [InlineData("{\"inputs\":[{\"name\":\"x\" \"shape\":[1]}]}")]
    [InlineData("{'inputs':[]}")]
    public void MalformedJson_IsInvalidArgument(string json)
    {
        var error = Invalid(json);

        Assert.Contains("malformed JSON", error.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("[]")]
    [InlineData("42")]
    public void BodyThatIsNotAnObject_IsInvalidArgument(string json)
    {
        Invalid(json);
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("{\"inputs\":[]}")]
    [InlineData("{\"id\":\"a\"}")]
    public void RequestWithoutInputs_IsInvalidArgument(string json)
    {
        var error = Invalid(json);

        Assert.Contains("'inputs'", error.Message);
    }

    [Fact]
    public void DataAndBinaryDataSize_Together_AreInvalidArgument()
    {
        var (body, headerLength) = Binary(
            """{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1],"parameters":{"binary_data_size":4}}]}""",
            Le.Fp32(1));

        var error = Invalid(body, headerLength);

        Assert.Contains("'x'", error.Message);
        Assert.Contains("both", error.Message);
    }

    [Fact]
    public void DataBeforeDatatypeAndShape_StillDecodes()
    {
        using var request = Read("""{"inputs":[{"data":[[1,2],[3,4]],"name":"x","shape":[2,2],"datatype":"INT16"}]}""");

        var input = Assert.Single(request.Inputs);
        Assert.Equal(TensorDataType.Int16, input.DataType);
        Assert.Equal([2L, 2L], input.Shape);
        Assert.Equal(Le.Int16(1, 2, 3, 4), input.Data.ToArray());
    }

    [Fact]
    public void UnknownFields_AreSkipped()
    {
        using var request = Read("""{"extra":{"a":[1,{"b":2}]},"inputs":[{"name":"x","shape":[1],"datatype":"FP32","foo":[1,2],"data":[1]}],"more":null}""");

        Assert.Equal(Le.Fp32(1), Assert.Single(request.Inputs).Data.ToArray());
    }

    [Fact]
    public void SeveralInputs_KeepTheirOrderAndData()
    {
        using var request = Read("""
            {"inputs":[
              {"name":"a","shape":[2],"datatype":"FP32","data":[1,2]},
              {"name":"b","shape":[1,1],"datatype":"BYTES","data":[["hi"]]},
              {"name":"c","shape":[2],"datatype":"BOOL","data":[false,true]}
            ]}
            """);

        Assert.Equal(["a", "b", "c"], request.Inputs.Select(i => i.Name));
        Assert.Equal(Le.Fp32(1, 2), request.Inputs[0].Data.ToArray());
        Assert.Equal(Le.Strings("hi"), request.Inputs[1].Data.ToArray());
        Assert.Equal(Le.Bools(false, true), request.Inputs[2].Data.ToArray());
    }

    [Fact]
    public void IdAndParameters_AreKeptWithTheirKinds()
    {
        using var request = Read("""
            {"id":"req-7","parameters":{"s":"text","i":42,"d":0.25,"b":true,"f":false,"neg":-3},
             "inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1],"parameters":{"note":"n"}}]}
            """);

        Assert.Equal("req-7", request.Id);
        var parameters = Assert.IsType<Dictionary<string, InferenceParameter>>(request.Parameters);
        Assert.Equal(6, parameters.Count);
        Assert.Equal(InferenceParameter.Of("text"), parameters["s"]);
        Assert.Equal(ParameterKind.Integer, parameters["i"].Kind);
        Assert.Equal(42, parameters["i"].Integer);
        Assert.Equal(ParameterKind.Double, parameters["d"].Kind);
        Assert.Equal(0.25, parameters["d"].Real);
        Assert.Equal(InferenceParameter.Of(true), parameters["b"]);
        Assert.Equal(InferenceParameter.Of(false), parameters["f"]);
        Assert.Equal(InferenceParameter.Of(-3L), parameters["neg"]);
        Assert.Equal(InferenceParameter.Of("n"), request.Inputs[0].Parameters!["note"]);
    }

    [Fact]
    public void NonStringId_IsInvalidArgument()
    {
        var error = Invalid("""{"id":5,"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}""");

        Assert.Contains("'id'", error.Message);
    }

    [Theory]
    [InlineData("{\"p\":null}")]
    [InlineData("{\"p\":[1]}")]
    [InlineData("{\"p\":{}}")]
    [InlineData("[]")]
    public void ParametersThatAreNotScalars_AreInvalidArgument(string parameters)
    {
        Invalid($$"""{"parameters":{{parameters}},"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}""");
    }

    [Fact]
    public void NoOutputs_LeavesOutputsNull()
    {
        using var request = Read(One("FP32", "[1]", "[1]"));

        Assert.Null(request.Outputs);
        Assert.Null(request.Id);
        Assert.Null(request.Parameters);
    }

    [Fact]
    public void Outputs_AreKeptInOrderWithTheirParameters()
    {
        using var request = Read("""
            {"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],
             "outputs":[{"name":"probs","parameters":{"binary_data":true,"k":"v"}},{"name":"label"}]}
            """);

        var outputs = Assert.IsType<List<RequestedOutput>>(request.Outputs);
        Assert.Equal(["probs", "label"], outputs.Select(o => o.Name));
        Assert.Equal(InferenceParameter.Of(true), outputs[0].Parameters!["binary_data"]);
        Assert.Equal(InferenceParameter.Of("v"), outputs[0].Parameters!["k"]);
        Assert.Null(outputs[1].Parameters);
    }

    [Fact]
    public void OutputWithoutName_IsInvalidArgument()
    {
        var error = Invalid("""{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"parameters":{}}]}""");

        Assert.Contains("'name'", error.Message);
    }

    [Fact]
    public void ClassificationOutput_IsInvalidArgument()
    {
        var error = Invalid("""{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"probs","parameters":{"classification":3}}]}""");

        Assert.Contains("'probs'", error.Message);
        Assert.Contains("classification", error.Message);
    }

    [Fact]
    public void DecodedData_IsOwnedByTheRequest_AndDisposeIsIdempotent()
    {
        var request = Read(One("FP32", "[2]", "[1,2]"));
        Assert.True(MemoryMarshal.TryGetArray(request.Inputs[0].Data, out var segment));
        Assert.NotNull(segment.Array);
        Assert.Equal(0, segment.Offset);
        Assert.Equal(8, segment.Count);

        request.Dispose();
        request.Dispose();
    }
}
