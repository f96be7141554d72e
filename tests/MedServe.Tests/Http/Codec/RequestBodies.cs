using System.Text;
using MedServe.Http.Codec;
using MedServe.Inference;

namespace MedServe.Tests.Http.Codec;

/// <summary>Runs <see cref="InferRequestReader"/> on test bodies.</summary>
internal static class RequestBodies
{
    public static InferenceRequest Read(string json)
    {
        var request = new InferenceRequest();
        InferRequestReader.Read(Encoding.UTF8.GetBytes(json), null, request);
        return request;
    }

    public static InferenceRequest Read(byte[] body, long? headerLength)
    {
        var request = new InferenceRequest();
        InferRequestReader.Read(body, headerLength, request);
        return request;
    }

    /// <summary>A JSON header followed by raw bytes, and the header's length.</summary>
    public static (byte[] Body, long HeaderLength) Binary(string json, params byte[][] raw)
    {
        var header = Encoding.UTF8.GetBytes(json);
        return ([.. header, .. raw.SelectMany(r => r)], header.Length);
    }

    public static InferenceException Invalid(string json) => Invalid(Encoding.UTF8.GetBytes(json), null);

    public static InferenceException Invalid(byte[] body, long? headerLength)
    {
        using var request = new InferenceRequest();
        var error = Assert.Throws<InferenceException>(() => InferRequestReader.Read(body, headerLength, request));
        Assert.Equal(InferenceErrorKind.InvalidArgument, error.Kind);
        return error;
    }

    /// <summary>A one-input request body.</summary>
    public static string One(string datatype, string shape, string data, string name = "x") =>
        $$"""{"inputs":[{"name":"{{name}}","shape":{{shape}},"datatype":"{{datatype}}","data":{{data}}}]}""";
}
