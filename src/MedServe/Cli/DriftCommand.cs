using System.CommandLine;
using System.Text.Json;

namespace MedServe.Cli;

/// <summary><c>medserve drift MODEL</c>: a running server's GET /v1/models/{model}/drift, as a table of features (or JSON with --json).</summary>
internal static class DriftCommand
{
    public static Command Create()
    {
        var server = new ServerConnection();
        var model = new Argument<string>("model") { Description = "The model" };
        var version = new Option<string>("--version") { Description = "One version (default: all)" };
        var from = new Option<string>("--from") { Description = "Predictions from this time, ISO 8601, inclusive" };
        var to = new Option<string>("--to") { Description = "Predictions before this time, ISO 8601" };
        var json = new Option<bool>("--json") { Description = "Print the server's JSON as it came" };
        var command = new Command("drift", "Drift of a model's live inputs and outputs against its reference (needs models:read)") { model, version, from, to, json };
        server.AddTo(command);
        server.SetAction(command, async (parse, client, cancellationToken) =>
        {
            var query = ServerConnection.Query(("version", parse.GetValue(version)), ("from", parse.GetValue(from)), ("to", parse.GetValue(to)));
            using var response = await client.GetAsync($"/v1/models/{Uri.EscapeDataString(parse.GetValue(model)!)}/drift{query}", cancellationToken);
            var report = await ServerConnection.Read(response, cancellationToken);
            if (parse.GetValue(json))
            {
                Console.WriteLine(report.GetRawText());
                return 0;
            }

            var reference = report.GetProperty("reference");
            Console.WriteLine($"{report.GetProperty("model").GetString()}: {report.GetProperty("window_rows").GetInt32()} rows against reference revision {reference.GetProperty("revision").GetInt64()} ({reference.GetProperty("source").GetString()}, {reference.GetProperty("rows").GetInt32()} rows)");
            if (report.TryGetProperty("insufficient", out var insufficient))
            {
                Console.WriteLine("  " + insufficient.GetString());
                return 0;
            }

            Console.WriteLine($"  {"feature",-28} {"test",-14} {"statistic",10} {"p (adj.)",10}  drifted");
            foreach (var feature in report.GetProperty("features").EnumerateArray())
            {
                var p = feature.TryGetProperty("adjusted_p_value", out var adjusted) ? adjusted.GetDouble().ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture) : "";
                Console.WriteLine($"  {feature.GetProperty("name").GetString(),-28} {feature.GetProperty("test").GetString(),-14} {feature.GetProperty("statistic").GetDouble(),10:0.0000} {p,10}  {(feature.GetProperty("drifted").GetBoolean() ? "yes" : "")}");
            }

            Console.WriteLine($"  {report.GetProperty("drifted_features").GetInt32()} of {report.GetProperty("features").GetArrayLength()} features drifted ({report.GetProperty("correction").GetString()}); dataset drift: {(report.GetProperty("dataset_drift").GetBoolean() ? "yes" : "no")}");
            if (report.TryGetProperty("multivariate", out var multivariate))
            {
                Console.WriteLine($"  multivariate (MMD, permutation): p = {multivariate.GetProperty("p_value").GetDouble():0.0000}{(multivariate.GetProperty("drifted").GetBoolean() ? ", drifted" : "")}");
            }

            return 0;
        });
        return command;
    }
}
