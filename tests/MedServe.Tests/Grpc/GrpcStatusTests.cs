using Grpc.Core;
using MedServe.Grpc;
using MedServe.Inference;

namespace MedServe.Tests.Grpc;

public sealed class GrpcStatusTests
{
    [Theory]
    [InlineData(InferenceErrorKind.InvalidArgument, StatusCode.InvalidArgument)]
    [InlineData(InferenceErrorKind.NotFound, StatusCode.NotFound)]
    [InlineData(InferenceErrorKind.Unavailable, StatusCode.Unavailable)]
    [InlineData(InferenceErrorKind.QueueFull, StatusCode.Unavailable)]
    [InlineData(InferenceErrorKind.TimedOut, StatusCode.DeadlineExceeded)]
    [InlineData(InferenceErrorKind.Cancelled, StatusCode.Cancelled)]
    [InlineData(InferenceErrorKind.TooLarge, StatusCode.ResourceExhausted)]
    [InlineData(InferenceErrorKind.Internal, StatusCode.Internal)]
    public void Inference_errors_map_to_grpc_status_codes_with_the_message(InferenceErrorKind kind, StatusCode code)
    {
        var error = InferenceGrpcService.ToRpc(new InferenceException(kind, "details"));

        Assert.Equal(code, error.StatusCode);
        Assert.Equal("details", error.Status.Detail);
    }
}
