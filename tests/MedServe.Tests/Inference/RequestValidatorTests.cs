using MedServe.Inference;
using MedServe.Repository;
using MedServe.Tensors;
using MedServe.Tests.Support;

namespace MedServe.Tests.Inference;

public sealed class RequestValidatorTests
{
    private static readonly ModelConfig Batched = new()
    {
        Name = "wdbc",
        MaxBatchSize = 4,
        Inputs =
        [
            new TensorConfig("features", TensorDataType.Fp32, [3]),
            new TensorConfig("note", TensorDataType.Bytes, [1]) { Optional = true },
            new TensorConfig("age", TensorDataType.Int64, [1]),
        ],
        Outputs =
        [
            new TensorConfig("probability", TensorDataType.Fp32, [1]),
            new TensorConfig("label", TensorDataType.Int64, [1]),
            new TensorConfig("score", TensorDataType.Fp32, [1]),
        ],
    };

    private static readonly ModelConfig Unbatched = Batched with { MaxBatchSize = 0, Inputs = [new TensorConfig("image", TensorDataType.UInt8, [-1, 2])] };

    private static InputTensor Features(long batch = 2, string name = "features") =>
        new(name, TensorDataType.Fp32, [batch, 3], Le.Fp32(new float[batch * 3]));

    private static InputTensor Age(long batch = 2) => new("age", TensorDataType.Int64, [batch, 1], Le.Int64(new long[batch]));

    private static InferenceRequest Request(params InputTensor[] inputs)
    {
        var request = new InferenceRequest();
        request.Inputs.AddRange(inputs);
        return request;
    }

    private static InferenceException Invalid(ModelConfig config, InferenceRequest request)
    {
        var error = Assert.Throws<InferenceException>(() => RequestValidator.Validate(config, request));
        Assert.Equal(InferenceErrorKind.InvalidArgument, error.Kind);
        return error;
    }

    [Fact]
    public void Validate_ValidRequestWithoutOutputs_ReturnsEveryOutput()
    {
        using var request = Request(Age(), Features());

        var outputs = RequestValidator.Validate(Batched, request);

        Assert.Equal(["probability", "label", "score"], outputs.Select(o => o.Name));
    }

    [Fact]
    public void Validate_RequestedOutputs_ReturnsThatSubsetInRequestOrder()
    {
        using var request = Request(Features(), Age());
        request.Outputs = [new RequestedOutput("score"), new RequestedOutput("probability")];

        var outputs = RequestValidator.Validate(Batched, request);

        Assert.Equal(["score", "probability"], outputs.Select(o => o.Name));
        Assert.Same(Batched.Outputs[2], outputs[0]);
    }

    [Fact]
    public void Validate_EmptyOutputList_ReturnsEveryOutput()
    {
        using var request = Request(Features(), Age());
        request.Outputs = [];

        Assert.Equal(3, RequestValidator.Validate(Batched, request).Count);
    }

    [Fact]
    public void Validate_OptionalInputGiven_IsAccepted()
    {
        using var request = Request(Features(1), Age(1), new InputTensor("note", TensorDataType.Bytes, [1, 1], Le.Strings("n")));

        Assert.Equal(3, RequestValidator.Validate(Batched, request).Count);
    }

    [Fact]
    public void Validate_UnknownInput_NamesItAndTheModelInputs()
    {
        using var request = Request(Features(), Age(), Features(name: "extra"));

        var error = Invalid(Batched, request);

        Assert.Contains("unexpected input 'extra'", error.Message);
        Assert.Contains("'wdbc'", error.Message);
        Assert.Contains("['features', 'note', 'age']", error.Message);
    }

    [Fact]
    public void Validate_DuplicateOutput_NamesIt()
    {
        using var request = Request(Features(), Age());
        request.Outputs = [new RequestedOutput("score"), new RequestedOutput("label"), new RequestedOutput("score")];

        var error = Invalid(Batched, request);

        Assert.Equal("output 'score' is requested more than once", error.Message);
    }

    [Fact]
    public void Validate_ManyCopiesOfOneOutput_AreRefusedAtTheFirstRepeat()
    {
        using var request = Request(Features(), Age());
        request.Outputs = Enumerable.Range(0, 100_000).Select(_ => new RequestedOutput("probability")).ToList();

        Assert.Equal("output 'probability' is requested more than once", Invalid(Batched, request).Message);
    }

    [Fact]
    public void Validate_DuplicateInput_NamesIt()
    {
        using var request = Request(Features(), Age(), Features());

        var error = Invalid(Batched, request);

        Assert.Contains("input 'features' is given more than once", error.Message);
    }

    [Fact]
    public void Validate_WrongDatatype_NamesBothTypes()
    {
        using var request = Request(new InputTensor("features", TensorDataType.Fp64, [2, 3], Le.Fp64(new double[6])), Age());

        var error = Invalid(Batched, request);

        Assert.Contains("input 'features' has datatype FP64", error.Message);
        Assert.Contains("expects FP32", error.Message);
    }

    [Theory]
    [InlineData(new long[] { 2, 4 }, "[2,4]")]
    [InlineData(new long[] { 6 }, "[6]")]
    [InlineData(new long[] { 1, 2, 3 }, "[1,2,3]")]
    public void Validate_WrongShape_NamesTheInputAndBothShapes(long[] shape, string formatted)
    {
        using var request = Request(new InputTensor("features", TensorDataType.Fp32, shape, Le.Fp32(new float[6])), Age());

        var error = Invalid(Batched, request);

        Assert.Contains($"input 'features' has shape {formatted}", error.Message);
        Assert.Contains("expects [-1,3]", error.Message);
    }

    [Fact]
    public void Validate_BatchAboveMaxBatchSize_IsRejected()
    {
        using var request = Request(Features(5), Age(5));

        var error = Invalid(Batched, request);

        Assert.Contains("input 'features' has batch size 5", error.Message);
        Assert.Contains("max_batch_size 4", error.Message);
    }

    [Fact]
    public void Validate_BatchAtMaxBatchSize_IsAccepted()
    {
        using var request = Request(Features(4), Age(4));

        Assert.Equal(3, RequestValidator.Validate(Batched, request).Count);
    }

    [Fact]
    public void Validate_InputsWithDifferentBatchSizes_AreRejected()
    {
        using var request = Request(Features(2), Age(3));

        var error = Invalid(Batched, request);

        Assert.Contains("input 'age' has batch size 3", error.Message);
        Assert.Contains("other inputs have 2", error.Message);
    }

    [Fact]
    public void Validate_MissingRequiredInput_NamesIt()
    {
        using var request = Request(Features());

        var error = Invalid(Batched, request);

        Assert.Contains("input 'age' is missing", error.Message);
    }

    [Fact]
    public void Validate_UnknownRequestedOutput_NamesItAndTheModelOutputs()
    {
        using var request = Request(Features(), Age());
        request.Outputs = [new RequestedOutput("label"), new RequestedOutput("logits")];

        var error = Invalid(Batched, request);

        Assert.Contains("unexpected output 'logits'", error.Message);
        Assert.Contains("['probability', 'label', 'score']", error.Message);
    }

    [Fact]
    public void Validate_DataNotFillingTheShape_NamesTheInput()
    {
        using var request = Request(new InputTensor("features", TensorDataType.Fp32, [2, 3], Le.Fp32(1, 2, 3)), Age());

        var error = Invalid(Batched, request);

        Assert.Contains("input 'features' has 12 bytes of data", error.Message);
        Assert.Contains("needs 24", error.Message);
    }

    [Fact]
    public void Validate_WithoutBatching_ChecksTheFullShapeAndAnyLeadingSize()
    {
        using var ok = Request(new InputTensor("image", TensorDataType.UInt8, [9, 2], new byte[18]));
        using var bad = Request(new InputTensor("image", TensorDataType.UInt8, [9, 3], new byte[27]));

        Assert.Equal(3, RequestValidator.Validate(Unbatched, ok).Count);
        Assert.Contains("expects [-1,2]", Invalid(Unbatched, bad).Message);
    }

    [Fact]
    public void CheckData_BytesWithWrongElementCount_NamesTheInput()
    {
        var input = new InputTensor("note", TensorDataType.Bytes, [3], Le.Strings("a", "b"));

        var error = Assert.Throws<InferenceException>(() => RequestValidator.CheckData(input));

        Assert.Contains("input 'note' has 2 elements", error.Message);
        Assert.Contains("needs 3", error.Message);
    }

    [Fact]
    public void CheckData_MalformedBytes_NamesTheInput()
    {
        var input = new InputTensor("note", TensorDataType.Bytes, [1], Le.Strings("abc")[..^1]);

        var error = Assert.Throws<InferenceException>(() => RequestValidator.CheckData(input));

        Assert.Contains("input 'note'", error.Message);
        Assert.Contains("malformed", error.Message);
    }

    [Fact]
    public void CheckData_OverflowingShape_IsInvalid()
    {
        var input = new InputTensor("x", TensorDataType.UInt8, [long.MaxValue, 2], ReadOnlyMemory<byte>.Empty);

        var error = Assert.Throws<InferenceException>(() => RequestValidator.CheckData(input));

        Assert.Contains("invalid shape", error.Message);
    }

    [Fact]
    public void CheckData_ExactData_Passes()
    {
        RequestValidator.CheckData(new InputTensor("x", TensorDataType.Fp16, [2, 2], new byte[8]));
        RequestValidator.CheckData(new InputTensor("s", TensorDataType.Bytes, [2], Le.Strings("", "z")));
        RequestValidator.CheckData(new InputTensor("e", TensorDataType.Int32, [0, 5], ReadOnlyMemory<byte>.Empty));
    }
}
