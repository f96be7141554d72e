using System.CommandLine;
using System.Text.Json;
using MedServe.Stats;

namespace MedServe.Cli;

/// <summary>
/// <c>medserve stats KIND</c>: one JSON object of inputs on standard input, one JSON object of
/// results on standard output; a bad input exits 2 with the field named on standard error.
/// </summary>
internal static class StatsCommand
{
    public static Command Create()
    {
        var kind = new Argument<string>("kind") { Description = "The statistic: " + string.Join(", ", StatisticsKinds.Names) };
        var command = new Command("stats", "Compute a statistic (scipy/statsmodels-equal) from JSON on standard input") { kind };
        command.SetAction(async (parse, cancellationToken) =>
        {
            string text;
            using (var input = new StreamReader(Console.OpenStandardInput()))
            {
                text = await input.ReadToEndAsync(cancellationToken);
            }

            try
            {
                using var json = JsonDocument.Parse(text);
                var result = StatisticsKinds.Run(parse.GetValue(kind)!, json.RootElement);
                Console.WriteLine(JsonSerializer.Serialize(result));
                return 0;
            }
            catch (JsonException e)
            {
                Console.Error.WriteLine($"medserve: standard input is not one JSON object: {e.Message}");
                return 2;
            }
            catch (StatisticsException e)
            {
                Console.Error.WriteLine($"medserve: {e.Message}");
                return 2;
            }
        });
        return command;
    }
}
