using System.Net;
using System.Text.Json;
using MedServe.Compliance.Journal;
using MedServe.IntegrationTests.Support;
using MedServe.Predictions;
using Microsoft.Extensions.DependencyInjection;

namespace MedServe.IntegrationTests;

/// <summary>
/// <c>Predictions:RetainFor</c>: a pass of the retention loop (led by this single process) removes
/// predictions past the horizon from the queryable log, and leaves the journal whole; a setting
/// that cannot work stops the start, naming it.
/// </summary>
public sealed class PredictionRetentionTests
{
    private const string RiskBody = """{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}]}""";

    [Fact]
    public async Task A_retention_pass_prunes_the_prediction_log_past_the_horizon_and_the_journal_keeps_every_record()
    {
        // A horizon of 1 ms: every prediction made before the pass is past it. The interval is long,
        // so only the explicit pass below prunes (the loop's first pass ran at start, on nothing).
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>
        {
            ["MedServe:Predictions:RetainFor"] = "00:00:00.001",
            ["MedServe:Predictions:RetentionInterval"] = "01:00:00",
        });
        using var client = server.Client(server.AdminKey);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody))).StatusCode);
        }

        var journal = server.Services.GetRequiredService<AuditJournal>();
        await journal.Writer!.FlushAsync();
        await server.Services.GetRequiredService<PredictionProjectionService>().CatchUpAsync();
        Assert.Equal(3, await CountAsync(client));
        var inJournal = journal.Verify().Records;

        await Task.Delay(5);
        Assert.Equal(3, await server.Services.GetRequiredService<PredictionRetentionService>().PruneOnceAsync());

        Assert.Equal(0, await CountAsync(client));
        var verdict = journal.Verify();
        Assert.True(verdict.Intact, verdict.Problem);
        Assert.True(verdict.Records >= inJournal, $"the journal went from {inJournal} to {verdict.Records} records");
    }

    [Fact]
    public async Task A_retention_that_cannot_work_stops_the_start_naming_the_setting()
    {
        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() =>
            RunningServer.StartAsync(new Dictionary<string, string?> { ["MedServe:Predictions:RetainFor"] = "-1.00:00:00" }));
        Assert.Contains("Predictions:RetainFor must be positive", error.Message);
    }

    private static async Task<int> CountAsync(HttpClient client)
    {
        using var listed = await client.GetAsync("/v1/predictions/risk?limit=1000");
        Assert.Equal(HttpStatusCode.OK, listed.StatusCode);
        return JsonDocument.Parse(await listed.Content.ReadAsStringAsync()).RootElement.GetProperty("predictions").GetArrayLength();
    }
}
