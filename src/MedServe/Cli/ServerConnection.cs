using System.CommandLine;
using System.Net.Http.Headers;
using System.Text.Json;

namespace MedServe.Cli;

/// <summary>
/// How CLI verbs reach a running server: <c>--server</c>, and a credential from <c>--api-key</c>,
/// else <c>MEDSERVE_API_KEY</c>, else the admin key the server wrote to <c>&lt;data-dir&gt;/admin.key</c>
/// (so a local administrator needs no flags). Every verb runs through <see cref="SetAction"/>: a
/// server that cannot be reached or refuses is a one-line message and an exit code, not a stack trace.
/// </summary>
internal sealed class ServerConnection
{
    /// <summary>The server answered with an error.</summary>
    public const int Refused = 1;

    /// <summary>The server could not be reached, or the command line cannot be used.</summary>
    public const int Unusable = 2;

    public Option<string> Server { get; } = new("--server") { Description = "The MedServe server", DefaultValueFactory = _ => "http://127.0.0.1:8000", Recursive = true };

    public Option<string> ApiKey { get; } = new("--api-key") { Description = "API key or token (default: $MEDSERVE_API_KEY, then <data-dir>/admin.key)", Recursive = true };

    public Option<string> DataDir { get; } = new("--data-dir") { Description = "The server's data dir, where its admin key is read when no key is given", DefaultValueFactory = _ => ".medserve", Recursive = true };

    public void AddTo(Command command)
    {
        command.Add(Server);
        command.Add(ApiKey);
        command.Add(DataDir);
    }

    /// <summary>The command's action, with a client for the server; failures become a message on stderr and <see cref="Refused"/> or <see cref="Unusable"/>.</summary>
    public void SetAction(Command command, Func<ParseResult, HttpClient, CancellationToken, Task<int>> action) =>
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                using var client = Open(parse);
                return await action(parse, client, cancellationToken).ConfigureAwait(false);
            }
            catch (CliFailure e)
            {
                Console.Error.WriteLine($"medserve: {e.Message}");
                return e.ExitCode;
            }
            catch (TaskCanceledException e) when (e.InnerException is TimeoutException)
            {
                Console.Error.WriteLine($"medserve: the server at {parse.GetValue(Server)} did not answer within {DefaultTimeout.TotalSeconds:0} s");
                return Unusable;
            }
            catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException)
            {
                // JsonElement's answer to a body of another shape: the address is some other service.
                Console.Error.WriteLine($"medserve: the server at {parse.GetValue(Server)} did not answer as MedServe does; is --server right?");
                return Unusable;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or UriFormatException or MedServe.Repository.ModelConfigException)
            {
                // Local files the command reads (a model folder, a downloaded artifact): their own message says which.
                Console.Error.WriteLine($"medserve: {e.Message}");
                return Unusable;
            }
        });

    // HttpClient's own default.
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(100);

    private HttpClient Open(ParseResult parse)
    {
        var dataDir = parse.GetValue(DataDir)!;
        var client = Client(parse.GetValue(Server)!, "--server",
            $"start it with 'medserve serve{(dataDir == ".medserve" ? "" : $" --data-dir {dataDir}")}', or give its address with --server");
        if (Credential(parse.GetValue(ApiKey), dataDir) is { } credential)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", credential);
        }

        return client;
    }

    /// <summary>A client whose connection failures name the address, the option that gave it and what to do.</summary>
    /// <param name="hint">What the user can do when nothing answers there.</param>
    public static HttpClient Client(string address, string option, string hint)
    {
        if (!Uri.TryCreate(address, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new CliFailure(Unusable, $"{option} must be an http:// or https:// address, e.g. http://127.0.0.1:8000");
        }

        return new HttpClient(new Reachability(uri, hint) { InnerHandler = new SocketsHttpHandler() }) { BaseAddress = uri };
    }

    public static string? Credential(string? given, string dataDir = ".medserve")
    {
        if (!string.IsNullOrEmpty(given))
        {
            return given;
        }

        if (Environment.GetEnvironmentVariable("MEDSERVE_API_KEY") is { Length: > 0 } fromEnvironment)
        {
            return fromEnvironment;
        }

        var local = Path.Combine(dataDir, "admin.key");
        return File.Exists(local) ? File.ReadAllText(local).Trim() : null;
    }

    public static StringContent Json(object value) => new(JsonSerializer.Serialize(value), System.Text.Encoding.UTF8, "application/json");

    /// <summary>The JSON body of a success (default for 204); the server's error message, as a <see cref="CliFailure"/>, otherwise.</summary>
    /// <summary>"?a=1&amp;b=2" of the pairs that have a value (escaped), or "" when none has.</summary>
    public static string Query(params (string Name, string? Value)[] pairs)
    {
        var given = pairs.Where(p => !string.IsNullOrEmpty(p.Value)).Select(p => $"{p.Name}={Uri.EscapeDataString(p.Value!)}").ToList();
        return given.Count > 0 ? "?" + string.Join('&', given) : "";
    }

    public static async Task<JsonElement> Read(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        var where = response.RequestMessage?.RequestUri is { } uri ? uri.GetLeftPart(UriPartial.Authority) : "the server";
        if (!response.IsSuccessStatusCode)
        {
            var message = text.Length > 500 ? text[..500] + "..." : text;
            try
            {
                message = JsonDocument.Parse(text).RootElement.GetProperty("error").GetString() ?? message;
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                // Not our error format: show the body as it came, shortened.
            }

            throw new CliFailure(Refused, $"{where} refused: {(int)response.StatusCode}: {message}");
        }

        try
        {
            return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
        }
        catch (JsonException)
        {
            throw new CliFailure(Unusable, $"{where} answered, but not with JSON: is it a MedServe (or MLflow) server?");
        }
    }

    /// <summary>Turns a failure to connect into a message naming the address it tried.</summary>
    private sealed class Reachability(Uri address, string hint) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var shown = address.GetLeftPart(UriPartial.Authority);
            try
            {
                return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException e)
            {
                var why = e.HttpRequestError switch
                {
                    HttpRequestError.NameResolutionError => "its host name does not resolve",
                    HttpRequestError.SecureConnectionError => "the TLS connection failed (is it https with a certificate this machine trusts?)",
                    HttpRequestError.ConnectionError => "nothing answers there",
                    _ => e.Message,
                };
                throw new CliFailure(Unusable, $"the server is not reachable at {shown}: {why}; {hint}");
            }
        }
    }
}

/// <summary>A CLI verb that cannot go on: the message for stderr and the exit code.</summary>
internal sealed class CliFailure(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
