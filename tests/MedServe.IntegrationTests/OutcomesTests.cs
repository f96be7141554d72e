using System.Net;
using System.Text;
using System.Text.Json;
using MedServe.Compliance.Journal;
using MedServe.IntegrationTests.Support;
using MedServe.Stats.Clinical;
using Microsoft.Extensions.DependencyInjection;

namespace MedServe.IntegrationTests;

/// <summary>Outcomes joined to logged predictions (by request id, client id, or patient and time), and the performance they give.</summary>
public sealed class OutcomesTests
{
    [Fact]
    public async Task Outcomes_join_their_predictions_and_give_the_performance_of_exactly_those_pairs()
    {
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>());
        using var client = server.Client(server.AdminKey);
        var requestIds = new List<string>();
        var scores = new List<double>();
        for (var i = 0; i < 40; i++)
        {
            var values = Enumerable.Range(0, 30).Select(j => Math.Round(((i * 7) + (j * 3)) % 23 / 10.0 - 1, 2)).ToArray();
            var body = JsonSerializer.Serialize(new { id = $"c-{i}", parameters = new { patient_id = $"MRN-OUT-{i}" }, inputs = new[] { new { name = "input", shape = new[] { 1, 30 }, datatype = "FP32", data = values } } });
            using var response = await client.PostAsync("/v2/models/risk/infer", new StringContent(body, Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            requestIds.Add(response.Headers.GetValues("X-Request-Id").Single());
            // The answer prints the FP32 score; the journal keeps its exact bits: read it back as the float it is.
            scores.Add((float)JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("outputs")[0].GetProperty("data")[0].GetDouble());
        }

        // Labels that follow the score loosely, so the AUROC is neither 0.5 nor 1.
        var median = scores.Order().ElementAt(20);
        var labels = scores.Select((s, i) => (s > median) ^ (i % 5 == 0) ? 1.0 : 0.0).ToList();
        var outcomes = new List<object>();
        for (var i = 0; i < 40; i++)
        {
            outcomes.Add(i switch
            {
                < 20 => new { request_id = requestIds[i], label = labels[i] },
                < 35 => (object)new { request_id = $"c-{i}", label = labels[i] },
                _ => new { model = "risk", patient_id = $"MRN-OUT-{i}", observed_at = DateTimeOffset.UtcNow.AddMinutes(5).ToString("O"), label = labels[i] },
            });
        }

        outcomes.Add(new { request_id = "no-such-request", label = 1.0 });
        outcomes.Add(new { request_id = requestIds[1], label = labels[1] });      // a duplicate
        outcomes.Add(new { request_id = requestIds[2], label = 1 - labels[2] });  // a conflict: the latest wins
        labels[2] = 1 - labels[2];

        using (var posted = await client.PostAsync("/v1/outcomes", new StringContent(JsonSerializer.Serialize(new { outcomes }), Encoding.UTF8, "application/json")))
        {
            var counts = await ServerFixture.JsonAsync(posted);
            Assert.True(posted.StatusCode == HttpStatusCode.OK, counts.ToString());
            Assert.Equal((43, 42, 1, 1, 1), (counts.GetProperty("accepted").GetInt32(), counts.GetProperty("matched").GetInt32(), counts.GetProperty("unmatched").GetInt32(),
                counts.GetProperty("duplicates").GetInt32(), counts.GetProperty("conflicts").GetInt32()));
        }

        // NDJSON, as a lab feed sends it: the same outcome again is a duplicate.
        using (var ndjson = await client.PostAsync("/v1/outcomes", new StringContent($"{{\"request_id\":\"{requestIds[3]}\",\"label\":{labels[3]}}}\n", Encoding.UTF8, "application/x-ndjson")))
        {
            Assert.Equal(1, (await ServerFixture.JsonAsync(ndjson)).GetProperty("duplicates").GetInt32());
        }

        using var performance = await client.GetAsync("/v1/models/risk/performance?version=1&threshold=" + median.ToString("R", System.Globalization.CultureInfo.InvariantCulture));
        var report = await ServerFixture.JsonAsync(performance);
        Assert.True(performance.StatusCode == HttpStatusCode.OK, report.ToString());
        Assert.Equal(40, report.GetProperty("n").GetInt32());
        Assert.Equal((int)labels.Sum(), report.GetProperty("positives").GetInt32());
        var metrics = report.GetProperty("metrics");
        var auroc = ClinicalMetrics.AurocWithInterval(labels, scores);
        Assert.Equal(auroc.Value, metrics.GetProperty("auroc").GetProperty("value").GetDouble(), 12);
        Assert.Equal(auroc.Low, metrics.GetProperty("auroc").GetProperty("ci_low").GetDouble(), 12);
        Assert.Equal(ClinicalMetrics.Brier(labels, scores), metrics.GetProperty("brier").GetProperty("value").GetDouble(), 12);
        Assert.Equal(ClinicalMetrics.AveragePrecision(labels, scores), metrics.GetProperty("auprc").GetProperty("value").GetDouble(), 12);
        var (ece, _) = Calibration.ExpectedCalibrationError(labels, scores);
        Assert.Equal(ece, metrics.GetProperty("ece").GetProperty("value").GetDouble(), 12);
        Assert.Equal(40, metrics.GetProperty("reliability").EnumerateArray().Sum(b => b.GetProperty("n").GetInt32()));
        Assert.Equal(Calibration.EstimatedAuroc(scores), report.GetProperty("estimated").GetProperty("auroc").GetDouble(), 12);
        var tp = Enumerable.Range(0, 40).Count(i => labels[i] == 1 && scores[i] >= median);
        Assert.Equal((double)tp / labels.Sum(), metrics.GetProperty("sensitivity").GetProperty("value").GetDouble(), 12);

        // The same report on the command line.
        var printed = new StringWriter();
        var previous = Console.Out;
        Console.SetOut(printed);
        try
        {
            Assert.Equal(0, await new System.CommandLine.RootCommand { MedServe.Cli.PerformanceCommand.Create() }
                .Parse(["performance", "risk", "--version", "1", "--server", server.HttpAddress.ToString(), "--api-key", server.AdminKey]).InvokeAsync());
        }
        finally
        {
            Console.SetOut(previous);
        }

        Assert.Contains("risk: 40 outcomes", printed.ToString());
        Assert.Contains($"auroc                  {auroc.Value:0.000}", printed.ToString());

        // Outcomes are journal records, their labels encrypted; the performance read is journaled too.
        var journal = server.Services.GetRequiredService<AuditJournal>();
        await journal.Writer!.FlushAsync();
        var records = JournalVerifier.Read(journal.Folder, 1, 100_000);
        Assert.Equal(41, records.Count(r => r.Entry.Kind == JournalKind.Outcome));
        Assert.Contains(records, r => r.Entry.Action == "GET /v1/models/{model}/performance");
    }

    [Fact]
    public async Task Outcomes_import_from_a_file_in_batches_with_totals()
    {
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>());
        using var client = server.Client(server.AdminKey);
        var values = string.Join(",", Enumerable.Repeat("0.25", 30));
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            using var inferred = await client.PostAsync("/v2/models/risk/infer", new StringContent(
                $$"""{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[{{values}}]}]}""", Encoding.UTF8, "application/json"));
            ids.Add(inferred.Headers.GetValues("X-Request-Id").Single());
        }

        var file = Path.Combine(server.Root, "outcomes.ndjson");
        await File.WriteAllLinesAsync(file, ids.Select((id, i) => $"{{\"request_id\":\"{id}\",\"label\":{i % 2}}}").Append("{\"request_id\":\"unknown\",\"label\":1}"));

        var output = new StringWriter();
        var previous = Console.Out;
        Console.SetOut(output);
        int exit;
        try
        {
            exit = await new System.CommandLine.RootCommand { MedServe.Cli.OutcomesCommand.Create() }
                .Parse(["outcomes", "import", file, "--batch", "4", "--server", server.HttpAddress.ToString(), "--api-key", server.AdminKey]).InvokeAsync();
        }
        finally
        {
            Console.SetOut(previous);
        }

        Assert.True(exit == 0, output.ToString());
        Assert.Contains("imported 4 of 6", output.ToString());
        Assert.Contains("accepted 6, matched 5, unmatched 1, duplicates 0, conflicts 0", output.ToString());
    }

    [Fact]
    public async Task Bad_outcomes_are_refused_naming_the_record_and_field_and_a_key_needs_outcomes_write()
    {
        // A join window of one minute: a patient's outcome observed two minutes after the prediction joins nothing.
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?> { ["MedServe:Outcomes:JoinWindow"] = "00:01:00" });
        using var client = server.Client(server.AdminKey);
        var values = string.Join(",", Enumerable.Repeat("0.5", 30));
        using (var inferred = await client.PostAsync("/v2/models/risk/infer", new StringContent(
            $$"""{"parameters":{"patient_id":"MRN-LATE"},"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[{{values}}]}]}""", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.OK, inferred.StatusCode);
        }

        foreach (var (observed, matched) in new[] { (DateTimeOffset.UtcNow.AddMinutes(2), 0), (DateTimeOffset.UtcNow.AddSeconds(30), 1) })
        {
            using var late = await client.PostAsync("/v1/outcomes", new StringContent(
                JsonSerializer.Serialize(new[] { new { model = "risk", patient_id = "MRN-LATE", observed_at = observed.ToString("O"), label = 1 } }), Encoding.UTF8, "application/json"));
            Assert.Equal(matched, (await ServerFixture.JsonAsync(late)).GetProperty("matched").GetInt32());
        }

        foreach (var (body, message) in new[]
        {
            ("""[{"request_id":"a","label":2}]""", "outcome 0: 'label' must be 0 or 1"),
            ("""[{"request_id":"a","label":1},{"label":0}]""", "outcome 1: name its prediction"),
            ("""[{"model":"risk","patient_id":"p","observed_at":"yesterday","label":1}]""", "'observed_at'"),
            ("""[{"request_id":"a","label":1,"value":3}]""", "exactly one of 'label'"),
            ("""[{"model":"risk","patient_id":" MRN-7","observed_at":"2026-12-01T00:00:00Z","label":1}]""", "leading or trailing whitespace"),
            ("not json", "not JSON outcomes"),
        })
        {
            using var refused = await client.PostAsync("/v1/outcomes", new StringContent(body, Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Contains(message, (await ServerFixture.JsonAsync(refused)).GetProperty("error").GetString());
        }

        using var performance = await client.GetAsync("/v1/models/risk/performance");
        Assert.Contains("needs at least 20 outcomes", (await ServerFixture.JsonAsync(performance)).GetProperty("insufficient").GetString());
    }
}
