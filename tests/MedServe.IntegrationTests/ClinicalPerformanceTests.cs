using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using MedServe.Compliance.Journal;
using MedServe.IntegrationTests.Support;
using MedServe.Samples;
using MedServe.Training.BreastCancer;
using Microsoft.Extensions.DependencyInjection;

namespace MedServe.IntegrationTests;

/// <summary>
/// End to end: the held-out rows of data/wdbc.csv through the breast-cancer sample with patient
/// ids and subgroup parameters, their labels posted as outcomes by patient and time, and the
/// performance report equal to scikit-learn's figures for the same scores and labels.
/// </summary>
public sealed class ClinicalPerformanceTests
{
    /// <summary>
    /// scikit-learn 1.2 <c>roc_auc_score</c> and <c>average_precision_score</c> of the 142 held-out
    /// rows (seed 42, 25%) as the sample model scores them (its scores and labels run through
    /// /usr/bin/python3 once; the numbers are kept here).
    /// </summary>
    private const double SklearnAuroc = 0.9976680093279627;
    private const double SklearnAveragePrecision = 0.9964261469150971;

    [Fact]
    public async Task The_held_out_wdbc_rows_give_scikit_learns_auroc_per_cohort_and_subgroup()
    {
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>(), provision: repository => SampleModels.ProvisionBreastCancer(repository));
        using var client = server.Client(server.AdminKey);
        var data = WdbcDataset.Load(Path.Combine(AppContext.BaseDirectory, "samples", "wdbc.csv"));
        var (_, test) = data.Split(0.25, 42);
        var scores = new List<double>();
        var labels = new List<double>();
        foreach (var row in test)
        {
            var body = JsonSerializer.Serialize(new
            {
                parameters = new Dictionary<string, object> { ["patient_id"] = $"WDBC-{row}", ["site"] = row % 3 == 0 ? "north" : "south", ["age_band"] = row % 2 == 0 ? "40-59" : "60-79", ["free_text"] = "not declared: never stored" },
                inputs = new[] { new { name = "features", shape = new[] { 1, 30 }, datatype = "FP32", data = data.Features[row] } },
            });
            using var response = await client.PostAsync("/v2/models/breast-cancer/infer", new StringContent(body, Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            scores.Add((float)JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("outputs")[0].GetProperty("data")[0].GetDouble());
            labels.Add(data.Labels[row] ? 1 : 0);
        }

        // The lab's feed: one outcome per patient, observed an hour later, joined by patient and time.
        var observed = DateTimeOffset.UtcNow.AddHours(1).ToString("O", CultureInfo.InvariantCulture);
        var outcomes = test.Select(row => new { model = "breast-cancer", patient_id = $"WDBC-{row}", observed_at = observed, label = data.Labels[row] ? 1 : 0 }).ToArray();
        using (var posted = await client.PostAsync("/v1/outcomes", new StringContent(JsonSerializer.Serialize(outcomes), Encoding.UTF8, "application/json")))
        {
            var counts = await ServerFixture.JsonAsync(posted);
            Assert.Equal(test.Length, counts.GetProperty("matched").GetInt32());
        }

        using var performance = await client.GetAsync("/v1/models/breast-cancer/performance");
        var report = await ServerFixture.JsonAsync(performance);
        Assert.True(performance.StatusCode == HttpStatusCode.OK, report.ToString());
        Assert.Equal(test.Length, report.GetProperty("n").GetInt32());
        Assert.Equal(0.5, report.GetProperty("threshold").GetDouble());
        var auroc = report.GetProperty("metrics").GetProperty("auroc");
        Assert.Equal(SklearnAuroc, auroc.GetProperty("value").GetDouble(), 12);
        Assert.True(auroc.GetProperty("ci_low").GetDouble() < SklearnAuroc && SklearnAuroc <= auroc.GetProperty("ci_high").GetDouble());
        Assert.Equal(SklearnAveragePrecision, report.GetProperty("metrics").GetProperty("auprc").GetProperty("value").GetDouble(), 12);
        Assert.Equal(MedServe.Stats.Clinical.ClinicalMetrics.Brier(labels, scores), report.GetProperty("metrics").GetProperty("brier").GetProperty("value").GetDouble(), 12);

        // Per declared subgroup: each value with its figures and its gap to the whole.
        var sites = report.GetProperty("subgroups").GetProperty("site");
        Assert.Equal(["north", "south"], sites.EnumerateArray().Select(s => s.GetProperty("value").GetString()));
        Assert.Equal(test.Length, sites.EnumerateArray().Sum(s => s.GetProperty("n").GetInt32()));
        foreach (var site in sites.EnumerateArray())
        {
            var members = test.Select((row, i) => (row, i)).Where(p => (p.row % 3 == 0) == (site.GetProperty("value").GetString() == "north")).Select(p => p.i).ToArray();
            var own = MedServe.Stats.Clinical.ClinicalMetrics.Auroc([.. members.Select(i => labels[i])], [.. members.Select(i => scores[i])]);
            Assert.Equal(own, site.GetProperty("metrics").GetProperty("auroc").GetProperty("value").GetDouble(), 12);
            Assert.Equal(own - SklearnAuroc, site.GetProperty("gaps").GetProperty("auroc").GetProperty("gap").GetDouble(), 12);
        }

        // Only declared parameters are kept with the prediction.
        var journal = server.Services.GetRequiredService<AuditJournal>();
        await journal.Writer!.FlushAsync();
        var envelopes = server.Services.GetRequiredService<MedServe.Compliance.Encryption.EnvelopeEncryption>();
        var inference = JournalVerifier.Read(journal.Folder, 1, 100_000).First(r => r.Entry.Kind == JournalKind.Inference && r.Entry.Payload.Length > 0);
        var payload = MedServe.Predictions.PredictionPayload.Decode(envelopes.Decrypt(inference.Entry.Payload.Span, Encoding.UTF8.GetBytes(inference.Entry.RequestId)));
        Assert.Equal(["age_band", "site"], payload.Subgroups.Keys.Order());
    }
}
