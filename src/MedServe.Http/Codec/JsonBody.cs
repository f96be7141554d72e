using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace MedServe.Http.Codec;

/// <summary>
/// Small JSON request bodies (management, registry, MLflow): a JSON object, an empty body
/// counting as {}. Each API raises its own error type through <c>invalid</c>.
/// </summary>
internal static class JsonBody
{
    /// <summary>These bodies are small: held to 1 MiB, not to the inference body limit (a string of a 64 MiB body is 128 MiB).</summary>
    public const int MaxBytes = 1024 * 1024;

    public static async Task<JsonDocument> ReadObjectAsync(HttpContext context, Func<string, Exception> invalid)
    {
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size && !(size.MaxRequestBodySize <= MaxBytes))
        {
            size.MaxRequestBodySize = MaxBytes;
        }

        string text;
        try
        {
            using var reader = new StreamReader(context.Request.Body);
            text = await reader.ReadToEndAsync(context.RequestAborted).ConfigureAwait(false);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw invalid($"the request body is above {MaxBytes} bytes, the limit for this endpoint");
        }

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
