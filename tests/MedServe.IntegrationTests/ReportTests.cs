using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using MedServe.IntegrationTests.Support;
using MedServe.Samples;
using MedServe.Training.BreastCancer;

namespace MedServe.IntegrationTests;

/// <summary>
/// The model report, opened in Debian's headless chromium with every host unresolvable: it draws
/// its charts (ROC, calibration, drift over time) and tables from what it carries, with no network.
/// </summary>
public sealed class ReportTests
{
    [Fact]
    public async Task The_report_page_draws_its_charts_and_tables_in_a_real_browser_with_no_network()
    {
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>(), provision: repository => SampleModels.ProvisionBreastCancer(repository));
        using var client = server.Client(server.AdminKey);
        var data = WdbcDataset.Load(Path.Combine(AppContext.BaseDirectory, "samples", "wdbc.csv"));
        var (_, test) = data.Split(0.25, 42);
        foreach (var row in test)
        {
            var body = JsonSerializer.Serialize(new
            {
                parameters = new Dictionary<string, object> { ["patient_id"] = $"MRN-REPORT-{row}", ["site"] = row % 3 == 0 ? "north" : "south" },
                inputs = new[] { new { name = "features", shape = new[] { 1, 30 }, datatype = "FP32", data = data.Features[row] } },
            });
            using var response = await client.PostAsync("/v2/models/breast-cancer/infer", new StringContent(body, Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var observed = DateTimeOffset.UtcNow.AddMinutes(1).ToString("O", CultureInfo.InvariantCulture);
        using (await client.PostAsync("/v1/outcomes", new StringContent(JsonSerializer.Serialize(
            test.Select(row => new { model = "breast-cancer", patient_id = $"MRN-REPORT-{row}", observed_at = observed, label = data.Labels[row] ? 1 : 0 })), Encoding.UTF8, "application/json")))
        {
        }

        using (var api = await client.GetAsync("/v1/models/breast-cancer/report"))
        {
            Assert.Equal("text/html", api.Content.Headers.ContentType!.MediaType);
            Assert.StartsWith("default-src 'none'", api.Headers.GetValues("Content-Security-Policy").Single());
        }

        var file = Path.Combine(server.Root, "report.html");
        Assert.Equal(0, await new System.CommandLine.RootCommand { MedServe.Cli.ReportCommand.Create() }
            .Parse(["report", "breast-cancer", "--html", file, "--server", server.HttpAddress.ToString(), "--api-key", server.AdminKey]).InvokeAsync());
        var html = await File.ReadAllTextAsync(file);
        Assert.DoesNotMatch(new Regex("(src|href)\\s*=\\s*[\"']?(https?:)?//", RegexOptions.IgnoreCase), html);
        Assert.DoesNotContain("MRN-REPORT", html);
        Assert.Contains("Leon Sorokin", html); // the bundled library's licence travels with it

        var dom = await Chromium.DomAsync(file, server.Root);

        // ROC, calibration and drift over time: a canvas each, drawn by the page's own script.
        Assert.Matches("data-rendered=\"[3-9]\"", dom);
        Assert.Contains("id=\"roc\"", dom);
        Assert.Contains("id=\"calibration\"", dom);
        Assert.Contains("id=\"drift-over-time\"", dom);
        var subgroups = Regex.Match(dom, "<table id=\"subgroup-table\">.*?</table>", RegexOptions.Singleline).Value;
        Assert.Contains("<td>north</td>", subgroups);
        Assert.Contains("<td>south</td>", subgroups);
        var drift = Regex.Match(dom, "<table id=\"drift-table\">.*?</table>", RegexOptions.Singleline).Value;
        Assert.Equal(31 + 1, Regex.Matches(drift, "<tr>").Count);
        Assert.Contains("<td>mean_radius</td>", drift);
    }
}
