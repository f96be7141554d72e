using System.CommandLine;
using System.Net.Http.Headers;
using System.Text.Json;

namespace MedServe.Cli;

/// <summary>
/// How CLI verbs reach a running server: <c>--server</c>, and a credential from <c>--api-key</c>,
/// else <c>MEDSERVE_API_KEY</c>, else the admin key the server wrote to <c>.medserve/admin.key</c>
/// (so a local administrator needs no flags).
/// </summary>
internal sealed class ServerConnection
{
    public Option<string> Server { get; } = new("--server") { Description = "The MedServe server", DefaultValueFactory = _ => "http://127.0.0.1:8000", Recursive = true };

    public Option<string> ApiKey { get; } = new("--api-key") { Description = "API key or token (default: $MEDSERVE_API_KEY, then .medserve/admin.key)", Recursive = true };

    public void AddTo(Command command)
    {
        command.Add(Server);
        command.Add(ApiKey);
    }

    public HttpClient Open(ParseResult parse)
    {
        var client = new HttpClient { BaseAddress = new Uri(parse.GetValue(Server)!) };
        if (Credential(parse.GetValue(ApiKey)) is { } credential)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", credential);
        }

        return client;
    }

    public static string? Credential(string? given)
    {
        if (!string.IsNullOrEmpty(given))
        {
            return given;
        }

        if (Environment.GetEnvironmentVariable("MEDSERVE_API_KEY") is { Length: > 0 } fromEnvironment)
        {
            return fromEnvironment;
        }

        var local = Path.Combine(".medserve", "admin.key");
        return File.Exists(local) ? File.ReadAllText(local).Trim() : null;
    }

    public static StringContent Json(object value) => new(JsonSerializer.Serialize(value), System.Text.Encoding.UTF8, "application/json");

    /// <summary>The JSON body of a success (null for 204); the server's error message, as an exception, otherwise.</summary>
    public static async Task<JsonElement> Read(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            var message = text;
            try
            {
                message = JsonDocument.Parse(text).RootElement.GetProperty("error").GetString() ?? text;
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException)
            {
                // Not our error format: show the body as it came.
            }

            throw new InvalidOperationException($"{(int)response.StatusCode}: {message}");
        }

        return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
    }
}
