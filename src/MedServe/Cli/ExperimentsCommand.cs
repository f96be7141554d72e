using System.CommandLine;
using System.Text;
using System.Text.Json;

namespace MedServe.Cli;

/// <summary><c>medserve experiments list | get | create FILE | pause | resume | stop | promote | report</c> against a running server.</summary>
internal static class ExperimentsCommand
{
    public static Command Create()
    {
        var command = new Command("experiments", "A/B experiments, shadows and canary rollouts (needs models:read; changes need models:write)");
        command.Add(Verb("list", "Every experiment and its state", null, (client, name, _, ct) => client.GetAsync("/v1/experiments", ct)));
        command.Add(Verb("get", "One experiment: its spec, state, routing and history", "name", (client, name, _, ct) => client.GetAsync($"/v1/experiments/{Uri.EscapeDataString(name!)}", ct)));
        command.Add(Verb("report", "An experiment's report: per arm, differences, always-valid p-values, sample ratio, power, decision", "name",
            (client, name, _, ct) => client.GetAsync($"/v1/experiments/{Uri.EscapeDataString(name!)}/report", ct)));
        command.Add(Verb("create", "Creates an experiment from a JSON file (POST /v1/experiments)", "file",
            async (client, file, _, ct) => await client.PostAsync("/v1/experiments", new StringContent(await File.ReadAllTextAsync(file!, ct), Encoding.UTF8, "application/json"), ct)));
        foreach (var action in new[] { "pause", "resume", "stop", "promote" })
        {
            command.Add(Verb(action, $"{char.ToUpperInvariant(action[0])}{action[1..]}s an experiment" + (action == "promote" ? " (the winner, --arm, becomes the serving version)" : ""), "name",
                (client, name, arm, ct) => client.PostAsync($"/v1/experiments/{Uri.EscapeDataString(name!)}/{action}",
                    new StringContent(JsonSerializer.Serialize(new { arm }), Encoding.UTF8, "application/json"), ct), withArm: action == "promote"));
        }

        return command;
    }

    private static Command Verb(string name, string description, string? argument, Func<HttpClient, string?, string?, CancellationToken, Task<HttpResponseMessage>> send, bool withArm = false)
    {
        var server = new ServerConnection();
        var verb = new Command(name, description);
        Argument<string>? value = null;
        if (argument is not null)
        {
            value = new Argument<string>(argument);
            verb.Add(value);
        }

        var arm = new Option<string>("--arm") { Description = "The winning arm (default: the last arm, a rollout's candidate)" };
        if (withArm)
        {
            verb.Add(arm);
        }

        server.AddTo(verb);
        server.SetAction(verb, async (parse, client, cancellationToken) =>
        {
            using var response = await send(client, value is null ? null : parse.GetValue(value), withArm ? parse.GetValue(arm) : null, cancellationToken);
            var json = await ServerConnection.Read(response, cancellationToken);
            Console.WriteLine(JsonSerializer.Serialize(json, new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        });
        return verb;
    }
}
