using System.CommandLine;
using System.Text;
using System.Text.Json;
using Spectre.Console;

namespace MedServe.Cli;

/// <summary>
/// <c>medserve outcomes import FILE</c>: outcomes from a file (NDJSON, or a JSON array) to a
/// running server's POST /v1/outcomes, in batches, with a progress bar on a terminal and plain
/// lines elsewhere; the totals of matched, unmatched, duplicates and conflicts at the end.
/// </summary>
internal static class OutcomesCommand
{
    public static Command Create()
    {
        var server = new ServerConnection();
        var command = new Command("outcomes", "Report clinical outcomes for logged predictions (needs outcomes:write)");
        server.AddTo(command);
        var file = new Argument<FileInfo>("file") { Description = "Outcomes, one JSON object per line (NDJSON) or a JSON array: {\"request_id\": ..., \"label\": 0|1}" };
        var batch = new Option<int>("--batch") { Description = "Outcomes per request (default 1000)", DefaultValueFactory = _ => 1000 };
        var import = new Command("import", "Import outcomes from a file") { file, batch };
        server.SetAction(import, async (parse, client, cancellationToken) =>
        {
            var path = parse.GetValue(file)!;
            if (!path.Exists)
            {
                Console.Error.WriteLine($"medserve: no file {path.Name}");
                return 2;
            }

            List<string> lines;
            try
            {
                lines = Lines(await File.ReadAllTextAsync(path.FullName, cancellationToken));
            }
            catch (JsonException e)
            {
                Console.Error.WriteLine($"medserve: {path.Name} is neither NDJSON nor a JSON array of outcomes: {e.Message}");
                return 2;
            }

            var size = Math.Clamp(parse.GetValue(batch), 1, 100_000);
            var totals = new Dictionary<string, long> { ["accepted"] = 0, ["matched"] = 0, ["unmatched"] = 0, ["duplicates"] = 0, ["conflicts"] = 0 };
            async Task Send(Action<int> advanced)
            {
                foreach (var chunk in lines.Chunk(size))
                {
                    using var content = new StringContent(string.Join('\n', chunk) + "\n", Encoding.UTF8, "application/x-ndjson");
                    using var response = await client.PostAsync("/v1/outcomes", content, cancellationToken);
                    var counts = await ServerConnection.Read(response, cancellationToken);
                    foreach (var key in totals.Keys.ToList())
                    {
                        totals[key] += counts.GetProperty(key).GetInt64();
                    }

                    advanced(chunk.Length);
                }
            }

            if (AnsiConsole.Profile.Capabilities.Interactive)
            {
                await AnsiConsole.Progress().StartAsync(async progress =>
                {
                    var task = progress.AddTask($"importing {lines.Count} outcomes", maxValue: lines.Count);
                    await Send(n => task.Increment(n));
                });
            }
            else
            {
                var done = 0;
                await Send(n => Console.WriteLine($"imported {done += n} of {lines.Count}"));
            }

            Console.WriteLine(string.Join(", ", totals.Select(t => $"{t.Key} {t.Value}")));
            return 0;
        });
        command.Add(import);
        return command;
    }

    /// <summary>One JSON object per line, whether the file is NDJSON or one JSON array.</summary>
    private static List<string> Lines(string text)
    {
        var trimmed = text.TrimStart();
        if (trimmed.StartsWith('['))
        {
            using var document = JsonDocument.Parse(trimmed);
            return [.. document.RootElement.EnumerateArray().Select(e => e.GetRawText())];
        }

        return [.. text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0)];
    }
}
