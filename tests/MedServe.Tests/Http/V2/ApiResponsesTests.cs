using System.Text.Json;
using MedServe.Http.V2;
using MedServe.Inference;
using Microsoft.AspNetCore.Http;

namespace MedServe.Tests.Http.V2;

public sealed class ApiResponsesTests
{
    [Theory]
    [InlineData(InferenceErrorKind.InvalidArgument, 400)]
    [InlineData(InferenceErrorKind.NotFound, 404)]
    [InlineData(InferenceErrorKind.Unavailable, 503)]
    [InlineData(InferenceErrorKind.QueueFull, 503)]
    [InlineData(InferenceErrorKind.TimedOut, 503)]
    [InlineData(InferenceErrorKind.TooLarge, 413)]
    [InlineData(InferenceErrorKind.Internal, 500)]
    public async Task Errors_get_their_status_and_a_json_error_body(InferenceErrorKind kind, int status)
    {
        var context = new DefaultHttpContext();
        var body = new MemoryStream();
        context.Response.Body = body;

        await ApiResponses.WriteErrorAsync(context.Response, new InferenceException(kind, "what went wrong"));

        Assert.Equal(status, context.Response.StatusCode);
        Assert.Equal("what went wrong", JsonDocument.Parse(body.ToArray()).RootElement.GetProperty("error").GetString());
        Assert.Equal(kind == InferenceErrorKind.QueueFull, context.Response.Headers.RetryAfter.Count > 0);
    }
}
