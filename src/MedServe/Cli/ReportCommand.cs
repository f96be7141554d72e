using System.CommandLine;

namespace MedServe.Cli;

/// <summary><c>medserve report MODEL --html out.html</c>: a running server's self-contained report page, written to a file.</summary>
internal static class ReportCommand
{
    public static Command Create()
    {
        var server = new ServerConnection();
        var model = new Argument<string>("model") { Description = "The model" };
        var html = new Option<FileInfo>("--html") { Description = "The file to write the page to", Required = true };
        var version = new Option<string>("--version") { Description = "One version (default: all)" };
        var from = new Option<string>("--from") { Description = "From this time, ISO 8601 (default: 7 days before --to)" };
        var to = new Option<string>("--to") { Description = "Before this time, ISO 8601 (default: now)" };
        var command = new Command("report", "A model's report as one self-contained HTML page: ROC and calibration, subgroups, drift over time, alerts (needs models:read)") { model, html, version, from, to };
        server.AddTo(command);
        server.SetAction(command, async (parse, client, cancellationToken) =>
        {
            var query = ServerConnection.Query(("version", parse.GetValue(version)), ("from", parse.GetValue(from)), ("to", parse.GetValue(to)));
            using var response = await client.GetAsync($"/v1/models/{Uri.EscapeDataString(parse.GetValue(model)!)}/report{query}", cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                await ServerConnection.Read(response, cancellationToken);
                return 1;
            }

            var file = parse.GetValue(html)!;
            await File.WriteAllTextAsync(file.FullName, await response.Content.ReadAsStringAsync(cancellationToken), cancellationToken);
            Console.WriteLine($"wrote {file.Name} ({file.Length / 1024.0:0} KiB)");
            return 0;
        });
        return command;
    }
}
