using System.CommandLine;
using System.Globalization;
using System.Text.Json;

namespace MedServe.Cli;

/// <summary><c>medserve performance MODEL</c>: a running server's GET /v1/models/{model}/performance, as a table (or JSON with --json).</summary>
internal static class PerformanceCommand
{
    public static Command Create()
    {
        var server = new ServerConnection();
        var model = new Argument<string>("model") { Description = "The model" };
        var version = new Option<string>("--version") { Description = "One version (default: all)" };
        var from = new Option<string>("--from") { Description = "Predictions from this time, ISO 8601, inclusive" };
        var to = new Option<string>("--to") { Description = "Predictions before this time, ISO 8601" };
        var threshold = new Option<double?>("--threshold") { Description = "The score at or above which a case is called positive (default 0.5)" };
        var json = new Option<bool>("--json") { Description = "Print the server's JSON as it came" };
        var command = new Command("performance", "Clinical performance of a model against its outcomes (needs models:read)") { model, version, from, to, threshold, json };
        server.AddTo(command);
        server.SetAction(command, async (parse, client, cancellationToken) =>
        {
            var query = ServerConnection.Query(("version", parse.GetValue(version)), ("from", parse.GetValue(from)), ("to", parse.GetValue(to)),
                ("threshold", parse.GetValue(threshold)?.ToString("R", CultureInfo.InvariantCulture)));
            using var response = await client.GetAsync($"/v1/models/{Uri.EscapeDataString(parse.GetValue(model)!)}/performance{query}", cancellationToken);
            var report = await ServerConnection.Read(response, cancellationToken);
            if (parse.GetValue(json))
            {
                Console.WriteLine(report.GetRawText());
                return 0;
            }

            Console.WriteLine($"{report.GetProperty("model").GetString()}: {report.GetProperty("n").GetInt32()} outcomes, {report.GetProperty("positives").GetInt32()} positive");
            if (report.TryGetProperty("estimated", out var estimated))
            {
                Console.WriteLine($"  estimated AUROC (no outcomes, if calibrated) {estimated.GetProperty("auroc").GetDouble():0.000} over {estimated.GetProperty("n").GetInt32()} predictions");
            }

            if (report.TryGetProperty("insufficient", out var insufficient))
            {
                Console.WriteLine("  " + insufficient.GetString());
                return 0;
            }

            foreach (var metric in report.GetProperty("metrics").EnumerateObject().Where(m => m.Value.ValueKind == JsonValueKind.Object))
            {
                var value = metric.Value.GetProperty("value").GetDouble();
                var interval = metric.Value.TryGetProperty("ci_low", out var low)
                    ? $"  (95% CI {low.GetDouble():0.000} to {metric.Value.GetProperty("ci_high").GetDouble():0.000})"
                    : "";
                Console.WriteLine($"  {metric.Name,-22} {value:0.000}{interval}");
            }

            return 0;
        });
        return command;
    }
}
