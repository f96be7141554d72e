using System.CommandLine;
using System.Globalization;
using MedServe.Security;

namespace MedServe.Cli;

/// <summary><c>medserve keys create/list/revoke/expire</c>: API keys through the running server's /v1/keys (admin scope); <c>keys generate</c> offline.</summary>
internal static class KeysCommand
{
    private static readonly char[] ScopeSeparators = [',', ' ', '\t', '\r', '\n'];

    public static Command Create()
    {
        var server = new ServerConnection();
        var command = new Command("keys", "Manage API keys on a running server (needs an admin key)");
        server.AddTo(command);
        command.Add(CreateKey(server));
        command.Add(List(server));
        command.Add(Change(server, "revoke", "Revoke a key now", name => name));
        command.Add(Change(server, "expire", "Expire a key now (it stays listed)", name => name + "/expire"));
        command.Add(Generate());
        return command;
    }

    /// <summary>A fresh key printed here and stored nowhere: for Auth:AdminKeyFile (a Kubernetes Secret) before any replica starts.</summary>
    private static Command Generate()
    {
        var command = new Command("generate", "Print a new key in MedServe's form without contacting a server (for Auth:AdminKeyFile)");
        command.SetAction(_ =>
        {
            Console.WriteLine(MedServe.Compliance.Access.ApiKeyStore.Generate());
            return 0;
        });
        return command;
    }

    private static Command CreateKey(ServerConnection server)
    {
        var name = new Option<string>("--name") { Description = "A unique name; audit records name the key by it", Required = true };
        var scopes = new Option<string[]>("--scopes")
        {
            Description = "infer, infer:<model>, models:read, models:write, audit:read, predictions:read, outcomes:write, admin (separate several by spaces or commas)",
            Required = true,
            AllowMultipleArgumentsPerToken = true,
        };
        var days = new Option<double?>("--expires-in-days") { Description = "Lifetime in days (default: no expiry)" };
        var rate = new Option<int?>("--rate-limit") { Description = "Requests per second for this key (default: the server's)" };
        var command = new Command("create", "Create a key; its secret is printed once") { name, scopes, days, rate };
        server.SetAction(command, async (parse, client, cancellationToken) =>
        {
            // "infer:risk models:read", "infer:risk,models:read" and two arguments are the same two scopes;
            // each is checked here too, so the request carries exactly the scopes the server will store.
            var scopeList = parse.GetValue(scopes)!.SelectMany(s => s.Split(ScopeSeparators, StringSplitOptions.RemoveEmptyEntries)).ToArray();
            var problem = scopeList.Length == 0 ? "give at least one scope"
                : scopeList.FirstOrDefault(s => !Scopes.IsValid(s)) is { } bad ? Scopes.Refusal(bad) : null;
            if (problem is not null)
            {
                Console.Error.WriteLine($"medserve: --scopes: {problem}");
                return 2;
            }

            var body = new Dictionary<string, object?> { ["name"] = parse.GetValue(name), ["scopes"] = scopeList };
            if (parse.GetValue(days) is { } d)
            {
                body["expires_in_days"] = d;
            }

            if (parse.GetValue(rate) is { } r)
            {
                body["requests_per_second"] = r;
            }

            using var response = await client.PostAsync("/v1/keys", ServerConnection.Json(body), cancellationToken);
            var created = await ServerConnection.Read(response, cancellationToken);
            var stored = created.GetProperty("scopes").EnumerateArray().Select(s => s.GetString());
            Console.WriteLine($"Created key '{created.GetProperty("name").GetString()}' with scopes {string.Join(", ", stored)}. Its secret is shown once:");
            Console.WriteLine(created.GetProperty("key").GetString());
            return 0;
        });
        return command;
    }

    private static Command List(ServerConnection server)
    {
        var command = new Command("list", "List keys (never their secrets)");
        server.SetAction(command, async (parse, client, cancellationToken) =>
        {
            using var response = await client.GetAsync("/v1/keys", cancellationToken);
            var keys = (await ServerConnection.Read(response, cancellationToken)).GetProperty("keys");
            Console.WriteLine($"{"NAME",-20} {"SCOPES",-30} {"CREATED",-20} {"STATE",-28}");
            foreach (var key in keys.EnumerateArray())
            {
                var scopes = string.Join(' ', key.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()));
                var state = key.GetProperty("revoked_at").ValueKind != System.Text.Json.JsonValueKind.Null
                    ? "revoked " + Time(key, "revoked_at")
                    : key.GetProperty("expires_at").ValueKind != System.Text.Json.JsonValueKind.Null ? "expires " + Time(key, "expires_at") : "active";
                Console.WriteLine($"{key.GetProperty("name").GetString(),-20} {scopes,-30} {Time(key, "created_at"),-20} {state,-28}");
            }

            return 0;
        });
        return command;
    }

    private static Command Change(ServerConnection server, string verb, string description, Func<string, string> path)
    {
        var name = new Argument<string>("name") { Description = "The key's name" };
        var command = new Command(verb, description) { name };
        server.SetAction(command, async (parse, client, cancellationToken) =>
        {
            var target = Uri.EscapeDataString(parse.GetValue(name)!);
            using var response = verb == "revoke"
                ? await client.DeleteAsync($"/v1/keys/{target}", cancellationToken)
                : await client.PostAsync($"/v1/keys/{path(target)}", null, cancellationToken);
            await ServerConnection.Read(response, cancellationToken);
            Console.WriteLine($"Key '{parse.GetValue(name)}': {verb}d");
            return 0;
        });
        return command;
    }

    private static string Time(System.Text.Json.JsonElement key, string field) =>
        key.GetProperty(field).GetDateTimeOffset().ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture);
}
