using System.Text.Json;
using MedServe.Http.Codec;

namespace MedServe.Tests.Http.Codec;

public sealed class JsonBodyTests
{
    private static Exception Invalid(string message) => new FormatException(message);

    [Theory]
    [InlineData("", "{}")]
    [InlineData("  ", "{}")]
    [InlineData("{\"a\":1}", "{\"a\":1}")]
    public void Objects_and_empty_bodies_parse(string text, string expected)
    {
        using var document = JsonBody.ParseObject(text, "the body", Invalid);

        Assert.Equal(expected, document.RootElement.GetRawText());
    }

    [Theory]
    [InlineData("[1,2]", "the body must be a JSON object")]
    [InlineData("{\"a\":\n", "the body is not valid JSON (line 2")]
    public void Anything_else_raises_the_callers_error_saying_what_is_wrong(string text, string message)
    {
        var error = Assert.Throws<FormatException>(() => JsonBody.ParseObject(text, "the body", Invalid));

        Assert.StartsWith(message, error.Message);
    }
}
