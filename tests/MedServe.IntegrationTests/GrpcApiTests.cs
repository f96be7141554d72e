using System.Runtime.InteropServices;
using Google.Protobuf;
using Grpc.Core;
using MedServe.Grpc.Protocol;
using MedServe.IntegrationTests.Support;

namespace MedServe.IntegrationTests;

/// <summary>Every RPC of inference.GRPCInferenceService through Grpc.Net.Client, as tritonclient.grpc calls them.</summary>
[Collection(ServerCollection.Name)]
public sealed class GrpcApiTests(ServerFixture server)
{
    [Fact]
    public async Task Server_live_ready_and_metadata()
    {
        Assert.True((await server.Grpc.ServerLiveAsync(new ServerLiveRequest())).Live);
        Assert.True((await server.Grpc.ServerReadyAsync(new ServerReadyRequest())).Ready);
        var metadata = await server.Grpc.ServerMetadataAsync(new ServerMetadataRequest());
        Assert.Equal("medserve", metadata.Name);
        Assert.Contains("model_repository", metadata.Extensions);
    }

    [Fact]
    public async Task Model_ready_metadata_and_config()
    {
        Assert.True((await server.Grpc.ModelReadyAsync(new ModelReadyRequest { Name = "breast-cancer", Version = "1" })).Ready);

        var metadata = await server.Grpc.ModelMetadataAsync(new ModelMetadataRequest { Name = "breast-cancer" });
        Assert.Equal(["1"], metadata.Versions);
        Assert.Equal("onnxruntime_onnx", metadata.Platform);
        Assert.Equal("features", metadata.Inputs[0].Name);
        Assert.Equal([-1L, 30L], metadata.Inputs[0].Shape);

        var config = (await server.Grpc.ModelConfigAsync(new ModelConfigRequest { Name = "breast-cancer" })).Config;
        Assert.Equal(64, config.MaxBatchSize);
        Assert.Equal(DataType.TypeFp32, config.Input[0].DataType);
        Assert.Equal([30L], config.Input[0].Dims);
        Assert.Equal(ModelInstanceGroup.Types.Kind.Cpu, config.InstanceGroup[0].Kind);
        Assert.Equal(1u, config.VersionPolicy.Latest.NumVersions);
    }

    [Fact]
    public async Task Infer_with_raw_contents_matches_the_rest_api()
    {
        var ones = Enumerable.Repeat(1f, 30).ToArray();
        var request = new ModelInferRequest { ModelName = "risk", Id = "g-1" };
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "FP32", Shape = { 1, 30 } });
        request.RawInputContents.Add(ByteString.CopyFrom(MemoryMarshal.AsBytes(ones.AsSpan())));

        var response = await server.Grpc.ModelInferAsync(request);

        Assert.Equal("risk", response.ModelName);
        Assert.Equal("1", response.ModelVersion);
        Assert.Equal("g-1", response.Id);
        Assert.Equal("output", response.Outputs[0].Name);
        Assert.Equal([1L, 1L], response.Outputs[0].Shape);
        Assert.Equal(0.5740907f, MemoryMarshal.Cast<byte, float>(response.RawOutputContents[0].Span)[0], 6);
    }

    [Fact]
    public async Task Infer_with_typed_contents_of_several_datatypes()
    {
        var ints = new ModelInferRequest { ModelName = "id-int16" };
        ints.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "in", Datatype = "INT16", Shape = { 1, 3 }, Contents = new InferTensorContents { IntContents = { -5, 0, 32767 } } });
        var intResponse = await server.Grpc.ModelInferAsync(ints);
        Assert.Equal(new short[] { -5, 0, 32767 }, MemoryMarshal.Cast<byte, short>(intResponse.RawOutputContents[0].Span).ToArray());

        var strings = new ModelInferRequest { ModelName = "id-bytes" };
        strings.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "in", Datatype = "BYTES", Shape = { 1, 3 }, Contents = new InferTensorContents { BytesContents = { ByteString.CopyFromUtf8("a"), ByteString.Empty, ByteString.CopyFromUtf8("xyz") } } });
        var raw = (await server.Grpc.ModelInferAsync(strings)).RawOutputContents[0].ToByteArray();
        Assert.Equal(new byte[] { 1, 0, 0, 0, (byte)'a', 0, 0, 0, 0, 3, 0, 0, 0, (byte)'x', (byte)'y', (byte)'z' }, raw);

        var doubles = new ModelInferRequest { ModelName = "id-fp64" };
        doubles.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "in", Datatype = "FP64", Shape = { 1, 3 }, Contents = new InferTensorContents { Fp64Contents = { 0.5, -1e300, 3 } } });
        doubles.Outputs.Add(new ModelInferRequest.Types.InferRequestedOutputTensor { Name = "copy" });
        var doubleResponse = await server.Grpc.ModelInferAsync(doubles);
        Assert.Equal(["copy"], doubleResponse.Outputs.Select(o => o.Name));
        Assert.Equal(new[] { 0.5, -1e300, 3 }, MemoryMarshal.Cast<byte, double>(doubleResponse.RawOutputContents[0].Span).ToArray());
    }

    [Theory]
    [InlineData("nope", "FP32", StatusCode.NotFound, "unknown model 'nope'")]
    [InlineData("risk", "FP64", StatusCode.InvalidArgument, "expects FP32")]
    [InlineData("corrupt", "FP32", StatusCode.Unavailable, "has no version loaded")]
    public async Task Infer_errors_map_to_grpc_status_codes(string model, string datatype, StatusCode code, string message)
    {
        var request = new ModelInferRequest { ModelName = model };
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = datatype, Shape = { 1, 30 } });
        request.RawInputContents.Add(ByteString.CopyFrom(new byte[30 * (datatype == "FP64" ? 8 : 4)]));

        var error = await Assert.ThrowsAsync<RpcException>(async () => await server.Grpc.ModelInferAsync(request));

        Assert.Equal(code, error.StatusCode);
        Assert.Contains(message, error.Status.Detail);
    }

    [Fact]
    public async Task Raw_contents_that_do_not_fill_the_shape_are_invalid()
    {
        var request = new ModelInferRequest { ModelName = "risk" };
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "FP32", Shape = { 1, 30 } });
        request.RawInputContents.Add(ByteString.CopyFrom(new byte[100]));

        var error = await Assert.ThrowsAsync<RpcException>(async () => await server.Grpc.ModelInferAsync(request));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("has 100 bytes of data", error.Status.Detail);
    }

    [Fact]
    public async Task Repository_index_load_unload_and_statistics()
    {
        var index = await server.Grpc.RepositoryIndexAsync(new RepositoryIndexRequest());
        Assert.Contains(index.Models, m => m.Name == "corrupt" && m.State == "UNAVAILABLE" && m.Reason.Contains("not a readable ONNX model", StringComparison.Ordinal));

        await server.Grpc.RepositoryModelUnloadAsync(new RepositoryModelUnloadRequest { ModelName = "id-bool" });
        Assert.False((await server.Grpc.ModelReadyAsync(new ModelReadyRequest { Name = "id-bool" })).Ready);
        await server.Grpc.RepositoryModelLoadAsync(new RepositoryModelLoadRequest
        {
            ModelName = "id-bool",
            Parameters = { ["config"] = new ModelRepositoryParameter { StringParam = "{\"name\":\"id-bool\",\"max_batch_size\":3}" } },
        });
        Assert.Equal(3, (await server.Grpc.ModelConfigAsync(new ModelConfigRequest { Name = "id-bool" })).Config.MaxBatchSize);

        var missing = await Assert.ThrowsAsync<RpcException>(async () => await server.Grpc.RepositoryModelLoadAsync(new RepositoryModelLoadRequest { ModelName = "ghost" }));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);

        var request = new ModelInferRequest { ModelName = "id-uint8" };
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "in", Datatype = "UINT8", Shape = { 1, 3 } });
        request.RawInputContents.Add(ByteString.CopyFrom(1, 2, 3));
        await server.Grpc.ModelInferAsync(request);
        var stats = (await server.Grpc.ModelStatisticsAsync(new ModelStatisticsRequest { Name = "id-uint8", Version = "1" })).ModelStats.Single();
        Assert.Equal(1ul, stats.InferenceStats.Success.Count);
        Assert.Equal(1ul, stats.ExecutionCount);
    }

    [Fact]
    public async Task Unoffered_rpcs_answer_unimplemented()
    {
        var error = await Assert.ThrowsAsync<RpcException>(async () => await server.Grpc.SystemSharedMemoryStatusAsync(new SystemSharedMemoryStatusRequest()));

        Assert.Equal(StatusCode.Unimplemented, error.StatusCode);
    }
}
