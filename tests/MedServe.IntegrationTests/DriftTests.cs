using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using MedServe.IntegrationTests.Support;
using MedServe.Samples;
using MedServe.Training.BreastCancer;
using Microsoft.Extensions.DependencyInjection;

namespace MedServe.IntegrationTests;

/// <summary>Drift of the breast-cancer sample's live traffic against the training split it ships as its reference, and references set from traffic and uploads.</summary>
public sealed class DriftTests
{
    [Fact]
    public async Task Held_out_rows_do_not_drift_from_the_training_split_and_shifted_rows_do()
    {
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>(), provision: repository => SampleModels.ProvisionBreastCancer(repository));
        using var client = server.Client(server.AdminKey);
        var data = WdbcDataset.Load(Path.Combine(AppContext.BaseDirectory, "samples", "wdbc.csv"));
        var (train, test) = data.Split(0.25, 42);
        foreach (var chunk in test.Chunk(16))
        {
            await Infer(client, chunk.Select(i => data.Features[i]).ToArray());
        }

        var report = await Drift(client, "");
        var reference = report.GetProperty("reference");
        Assert.Equal("model folder drift_reference.csv", reference.GetProperty("source").GetString());
        Assert.Equal(train.Length, reference.GetProperty("rows").GetInt32());
        Assert.Equal(test.Length, report.GetProperty("window_rows").GetInt32());
        var features = report.GetProperty("features").EnumerateArray().ToList();
        Assert.Equal(31, features.Count); // 30 inputs, named as the wdbc columns, and the output (the reference was scored through the model)
        Assert.Equal(("mean_radius", 0, "ks"), (features[0].GetProperty("name").GetString(), features[0].GetProperty("index").GetInt32(), features[0].GetProperty("test").GetString()));
        Assert.Equal("probability[0]", features[30].GetProperty("name").GetString());

        // The KS figures are the engine's on the same values: the training split's, and what was served.
        var expected = MedServe.Stats.Tests.KolmogorovSmirnov.TwoSample([.. train.Select(i => (double)data.Features[i][0])], [.. test.Select(i => (double)data.Features[i][0])]);
        Assert.Equal(expected.D, features[0].GetProperty("statistic").GetDouble(), 12);
        Assert.Equal(expected.P, features[0].GetProperty("p_value").GetDouble(), 12);
        Assert.False(report.GetProperty("dataset_drift").GetBoolean());
        Assert.Equal("benjamini-hochberg", report.GetProperty("correction").GetString());
        Assert.True(report.GetProperty("multivariate").GetProperty("p_value").GetDouble() > 0.025);

        // A new scanner reads every size 30% larger: a later window drifts, and says where.
        var since = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture);
        foreach (var chunk in test.Chunk(16))
        {
            await Infer(client, [.. chunk.Select(i => data.Features[i].Select((v, j) => j is 0 or 2 or 3 ? v * 1.3f : v).ToArray())]);
        }

        var shifted = await Drift(client, "?from=" + Uri.EscapeDataString(since));
        Assert.Equal(test.Length, shifted.GetProperty("window_rows").GetInt32());
        var drifted = shifted.GetProperty("features").EnumerateArray().Where(f => f.GetProperty("drifted").GetBoolean()).Select(f => f.GetProperty("name").GetString()).ToList();
        Assert.Contains("mean_radius", drifted);
        Assert.Contains("mean_area", drifted);
        Assert.DoesNotContain("mean_texture", drifted);
        Assert.True(shifted.GetProperty("drift_detected").GetBoolean());
        Assert.True(shifted.GetProperty("features")[0].GetProperty("psi").GetDouble() > 0.1);

        // An alert rule watches the same figures: the last minute (only the shifted rows) drifts.
        using (var rule = await client.PutAsync("/v1/alerts/rules/bc-drift", new StringContent(
            """{"name":"bc-drift","model":"breast-cancer","metric":"feature_drifted:mean_radius","above":0.5,"window":"PT1M","min_samples":20}""", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.OK, rule.StatusCode);
        }

        var events = await server.Services.GetRequiredService<MedServe.Alerts.AlertEvaluator>().EvaluateOnceAsync(DateTimeOffset.UtcNow.AddSeconds(1));
        Assert.Equal(("bc-drift", "firing", 1.0), (events.Single().Rule, events.Single().State, events.Single().Value!.Value));
    }

    /// <summary>
    /// The issue's end-to-end case: wdbc.csv's rows as traffic, then the same rows with one feature
    /// (mean_radius) scaled by 1.3. That feature is flagged, the dataset verdict follows its rule, an
    /// alert on it reaches a local receiver with a valid signature, and the report renders.
    /// </summary>
    [Fact]
    public async Task Wdbc_rows_then_the_same_rows_with_one_feature_scaled_flag_it_alert_signed_and_render_the_report()
    {
        const string secret = "drift-webhook-secret-0123456789";
        await using var receiver = await Receiver.StartAsync(failFirst: 0);
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>
        {
            ["MedServe:Alerts:Enabled"] = "false",
            ["MedServe:Alerts:Webhooks:0:Name"] = "pager",
            ["MedServe:Alerts:Webhooks:0:Url"] = receiver.Url,
            ["MedServe:Alerts:Webhooks:0:Secret"] = secret,
        }, provision: repository => SampleModels.ProvisionBreastCancer(repository));
        using var client = server.Client(server.AdminKey);
        var data = WdbcDataset.Load(Path.Combine(AppContext.BaseDirectory, "samples", "wdbc.csv"));
        var rows = Enumerable.Range(0, data.Features.Length).ToArray();
        foreach (var chunk in rows.Chunk(16))
        {
            await Infer(client, [.. chunk.Select(i => data.Features[i])]);
        }

        var plain = await Drift(client, "");
        Assert.Equal(rows.Length, plain.GetProperty("window_rows").GetInt32());
        Assert.False(plain.GetProperty("features")[0].GetProperty("drifted").GetBoolean());

        var since = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture);
        foreach (var chunk in rows.Chunk(16))
        {
            await Infer(client, [.. chunk.Select(i => data.Features[i].Select((v, j) => j == 0 ? v * 1.3f : v).ToArray())]);
        }

        var scaled = await Drift(client, "?from=" + Uri.EscapeDataString(since));
        var features = scaled.GetProperty("features").EnumerateArray().ToList();
        Assert.True(features.Single(f => f.GetProperty("name").GetString() == "mean_radius").GetProperty("drifted").GetBoolean());
        foreach (var unchanged in new[] { "mean_texture", "mean_perimeter", "mean_area", "worst_radius" })
        {
            Assert.False(features.Single(f => f.GetProperty("name").GetString() == unchanged).GetProperty("drifted").GetBoolean(), unchanged);
        }

        // The dataset verdict follows its rule: drifted when at least the configured share of features drifted.
        var share = scaled.GetProperty("drifted_share").GetDouble();
        Assert.Equal(share >= scaled.GetProperty("drift_share").GetDouble(), scaled.GetProperty("dataset_drift").GetBoolean());
        Assert.Equal(features.Count(f => f.GetProperty("drifted").GetBoolean()) / (double)features.Count, share, 12);
        Assert.True(scaled.GetProperty("drift_detected").GetBoolean());

        using (var rule = await client.PutAsync("/v1/alerts/rules/radius", new StringContent(
            """{"name":"radius","model":"breast-cancer","metric":"feature_drifted:mean_radius","above":0.5,"window":"PT10M","min_samples":100,"webhooks":["pager"]}""", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.OK, rule.StatusCode);
        }

        var fired = await server.Services.GetRequiredService<MedServe.Alerts.AlertEvaluator>().EvaluateOnceAsync(DateTimeOffset.UtcNow.AddSeconds(1));
        Assert.Equal(("radius", "firing"), (fired.Single().Rule, fired.Single().State));
        var delivery = (await receiver.WaitForAsync(1)).Single();
        Assert.Equal(MedServe.Alerts.WebhookSender.Sign(secret, delivery.Timestamp, delivery.Body), delivery.Signature);
        Assert.Equal("feature_drifted:mean_radius", JsonDocument.Parse(delivery.Body).RootElement.GetProperty("metric").GetString());

        var file = Path.Combine(server.Root, "drift-report.html");
        Assert.Equal(0, await new System.CommandLine.RootCommand { MedServe.Cli.ReportCommand.Create() }
            .Parse(["report", "breast-cancer", "--html", file, "--server", server.HttpAddress.ToString(), "--api-key", server.AdminKey]).InvokeAsync());
        var dom = await Chromium.DomAsync(file, server.Root);
        Assert.Contains("id=\"drift-over-time\"", dom);
        Assert.Matches("data-rendered=\"[1-9]\"", dom);
        Assert.Matches("<td>mean_radius</td><td>ks</td><td>[0-9.]+</td><td>[0-9.]+</td><td>[0-9.]*</td><td>yes</td>", dom);
        Assert.Contains("<td>radius</td>", Regex.Match(dom, "<table id=\"alert-table\">.*?</table>", RegexOptions.Singleline).Value);
    }

    [Fact]
    public async Task A_reference_is_set_from_traffic_or_an_upload_and_bad_uploads_say_where()
    {
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>());
        using var client = server.Client(server.AdminKey);
        var random = new Random(3);
        var start = DateTimeOffset.UtcNow.AddSeconds(-1);
        for (var i = 0; i < 6; i++)
        {
            var rows = Enumerable.Range(0, 8).Select(_ => Enumerable.Range(0, 30).Select(_ => (float)random.NextDouble()).ToArray()).ToArray();
            await Infer(client, rows, "risk", "input");
        }

        var window = JsonSerializer.Serialize(new { from = start.ToString("O"), to = DateTimeOffset.UtcNow.AddSeconds(1).ToString("O") });
        using (var put = await client.PutAsync("/v1/models/risk/drift/reference", new StringContent(window, Encoding.UTF8, "application/json")))
        {
            var body = await ServerFixture.JsonAsync(put);
            Assert.True(put.StatusCode == HttpStatusCode.OK, body.ToString());
            Assert.Equal((1L, 48, 31), (body.GetProperty("revision").GetInt64(), body.GetProperty("rows").GetInt32(), body.GetProperty("features").GetInt32()));
        }

        // The same traffic against itself: nothing drifts.
        var report = await Drift(client, "", "risk");
        Assert.Equal(0, report.GetProperty("drifted_features").GetInt32());
        Assert.Equal("input[0]", report.GetProperty("features")[0].GetProperty("name").GetString());

        // An upload: CSV rows, scored through the model, so the output has a reference too.
        var csv = new StringBuilder(string.Join(",", Enumerable.Range(0, 30).Select(j => $"input[{j}]")) + "\n");
        for (var r = 0; r < 40; r++)
        {
            csv.AppendLine(string.Join(",", Enumerable.Range(0, 30).Select(_ => random.NextDouble().ToString("R", CultureInfo.InvariantCulture))));
        }

        using (var upload = await client.PutAsync("/v1/models/risk/drift/reference?version=1", new StringContent(csv.ToString(), Encoding.UTF8, "text/csv")))
        {
            var body = await ServerFixture.JsonAsync(upload);
            Assert.True(upload.StatusCode == HttpStatusCode.OK, body.ToString());
            Assert.Equal((1L, 40, 31, "csv upload"), (body.GetProperty("revision").GetInt64(), body.GetProperty("rows").GetInt32(), body.GetProperty("features").GetInt32(), body.GetProperty("source").GetString()));
        }

        Assert.Equal("csv upload", (await Drift(client, "?version=1", "risk")).GetProperty("reference").GetProperty("source").GetString());

        using (var bad = await client.PutAsync("/v1/models/risk/drift/reference", new StringContent("a,b\n1,2\n3,x\n", Encoding.UTF8, "text/csv")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
            Assert.Contains("CSV line 3, column 'b': not a finite number", (await ServerFixture.JsonAsync(bad)).GetProperty("error").GetString());
        }

        using (var ragged = await client.PutAsync("/v1/models/risk/drift/reference", new StringContent("[1,2]\n[1]\n", Encoding.UTF8, "application/x-ndjson")))
        {
            Assert.Contains("NDJSON line 2: 1 values where the first line has 2", (await ServerFixture.JsonAsync(ragged)).GetProperty("error").GetString());
        }

        using var none = await client.GetAsync("/v1/models/nothing-here/drift");
        Assert.Equal(HttpStatusCode.NotFound, none.StatusCode);
    }

    [Fact]
    public void A_reference_round_trips_through_its_stored_form()
    {
        var random = new Random(8);
        var rows = Enumerable.Range(0, 1200).Select(_ => new[] { random.NextDouble(), (double)random.Next(3) }).ToList();
        var reference = MedServe.Drift.DriftReference.Build(["a", "b"], rows);

        var again = MedServe.Drift.DriftReference.FromJson(reference.ToJson());

        Assert.Equal(1200, again.RowCount);
        Assert.Equal(MedServe.Drift.DriftReference.JointRows, again.Rows.Count);
        Assert.Equal(reference.Features[0].Values, again.Features[0].Values);
        Assert.Equal(reference.Features[1].Categories, again.Features[1].Categories);
        Assert.Equal(MedServe.Stats.Drift.FeatureKind.Categorical, again.Features[1].Kind);
    }

    private static async Task Infer(HttpClient client, float[][] rows, string model = "breast-cancer", string input = "features")
    {
        var body = JsonSerializer.Serialize(new { inputs = new[] { new { name = input, shape = new[] { rows.Length, 30 }, datatype = "FP32", data = rows.SelectMany(r => r).ToArray() } } });
        using var response = await client.PostAsync($"/v2/models/{model}/infer", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    private static async Task<JsonElement> Drift(HttpClient client, string query, string model = "breast-cancer")
    {
        using var response = await client.GetAsync($"/v1/models/{model}/drift{query}");
        var report = await ServerFixture.JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, report.ToString());
        return report;
    }
}
