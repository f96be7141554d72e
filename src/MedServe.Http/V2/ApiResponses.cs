using System.Text.Json;
using MedServe.Http.Codec;
using MedServe.Inference;
using Microsoft.AspNetCore.Http;

namespace MedServe.Http.V2;

/// <summary>Writes protocol JSON bodies and <c>{"error": "..."}</c> errors with the right status.</summary>
public static class ApiResponses
{
    /// <summary>Messages keep quotes and non-ASCII names readable; HTML-safe escaping is pointless in an API.</summary>
    public static readonly JsonWriterOptions WriterOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static async Task WriteJsonAsync(HttpResponse response, int status, Action<Utf8JsonWriter> write)
    {
        using var buffer = new PooledBuffer(512);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            write(writer);
        }

        response.StatusCode = status;
        response.ContentType = "application/json";
        response.ContentLength = buffer.Length;
        await response.Body.WriteAsync(buffer.WrittenMemory).ConfigureAwait(false);
    }

    /// <summary>What a writer writes, as a document: a report read back for its figures (alerts, the report page, the rollout controller).</summary>
    public static JsonDocument Render(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            write(w);
        }

        return JsonDocument.Parse(buffer.ToArray());
    }

    /// <summary>One JSON object's text, its members written by <paramref name="members"/> (what stores keep and webhooks receive).</summary>
    public static string ObjectJson(Action<Utf8JsonWriter> members)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            members(w);
            w.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    public static Task WriteErrorAsync(HttpResponse response, int status, string message) =>
        WriteJsonAsync(response, status, w =>
        {
            w.WriteStartObject();
            w.WriteString("error", message);
            w.WriteEndObject();
        });

    public static Task WriteErrorAsync(HttpResponse response, InferenceException error)
    {
        if (error.Kind == InferenceErrorKind.QueueFull)
        {
            response.Headers.RetryAfter = "1";
        }

        return WriteErrorAsync(response, StatusOf(error.Kind), error.Message);
    }

    public static int StatusOf(InferenceErrorKind kind) => kind switch
    {
        InferenceErrorKind.InvalidArgument => StatusCodes.Status400BadRequest,
        InferenceErrorKind.NotFound => StatusCodes.Status404NotFound,
        InferenceErrorKind.Unavailable or InferenceErrorKind.QueueFull or InferenceErrorKind.TimedOut => StatusCodes.Status503ServiceUnavailable,
        InferenceErrorKind.Cancelled => StatusCodes.Status499ClientClosedRequest,
        InferenceErrorKind.TooLarge => StatusCodes.Status413PayloadTooLarge,
        _ => StatusCodes.Status500InternalServerError,
    };
}
