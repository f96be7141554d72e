using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace MedServe.Http.Codec;

/// <summary>
/// Small JSON request bodies (management, registry, MLflow): a JSON object, an empty body
/// counting as {}. Each API raises its own error type through <c>invalid</c>.
/// </summary>
internal static class JsonBody
{
    public static async Task<JsonDocument> ReadObjectAsync(HttpContext context, Func<string, Exception> invalid)
    {
        using var reader = new StreamReader(context.Request.Body);
        var text = await reader.ReadToEndAsync(context.RequestAborted).ConfigureAwait(false);
        return ParseObject(text, "the request body", invalid);
    }

    public static JsonDocument ParseObject(string text, string what, Func<string, Exception> invalid)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(string.IsNullOrWhiteSpace(text) ? "{}" : text);
        }
        catch (JsonException e)
        {
            throw invalid($"{what} is not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine})");
        }

        if (document.RootElement.ValueKind == JsonValueKind.Object)
        {
            return document;
        }

        document.Dispose();
        throw invalid($"{what} must be a JSON object");
    }
}
