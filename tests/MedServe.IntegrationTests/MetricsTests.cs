using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using MedServe.IntegrationTests.Support;

namespace MedServe.IntegrationTests;

[Collection(ServerCollection.Name)]
public sealed class MetricsTests(ServerFixture server)
{
    [Fact]
    public async Task Metrics_count_exactly_the_requests_sent()
    {
        const string ok = """{"inputs":[{"name":"in","shape":[2,3],"datatype":"INT8","data":[1,2,3,4,5,6]}]}""";
        const string bad = """{"inputs":[{"name":"in","shape":[2,3],"datatype":"INT16","data":[1,2,3,4,5,6]}]}""";
        for (var i = 0; i < 5; i++)
        {
            using var response = await server.PostJsonAsync("/v2/models/id-int8/infer", ok);
            Assert.True(response.IsSuccessStatusCode);
        }

        for (var i = 0; i < 2; i++)
        {
            using var response = await server.PostJsonAsync("/v2/models/id-int8/infer", bad);
        }

        var text = await server.Client.GetStringAsync("/metrics");

        Assert.Equal(5, Value(text, "nv_inference_request_success", "id-int8"));
        Assert.Equal(10, Value(text, "nv_inference_count", "id-int8"));
        Assert.Equal(5, Value(text, "nv_inference_exec_count", "id-int8"));
        Assert.Equal(2, Value(text, "nv_inference_request_failure", "id-int8", ",reason=\"OTHER\""));
        Assert.Equal(0, Value(text, "nv_inference_pending_request_count", "id-int8"));
        Assert.Equal(5, Value(text, "medserve_inference_request_duration_seconds_count", "id-int8"));
        Assert.Equal(5, Value(text, "medserve_inference_batch_size_bucket", "id-int8", ",le=\"2\""));
        Assert.True(Value(text, "nv_inference_compute_infer_duration_us", "id-int8") >= 0);
    }

    [Fact]
    public async Task Metrics_pass_promtool_and_carry_no_request_data()
    {
        using (var response = await server.PostJsonAsync("/v2/models/risk/infer",
            $$"""{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[{{string.Join(",", Enumerable.Repeat("0.123456", 30))}}]}]}"""))
        {
            Assert.True(response.IsSuccessStatusCode);
        }

        using var metrics = await server.Client.GetAsync("/metrics");
        var text = await metrics.Content.ReadAsStringAsync();
        Assert.StartsWith("text/plain", metrics.Content.Headers.ContentType?.MediaType);
        Assert.DoesNotContain("0.123456", text);

        // promtool (Debian package prometheus) is installed by .ci/run.
        var promtool = new ProcessStartInfo("promtool", "check metrics") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(promtool)!;
        await process.StandardInput.WriteAsync(text);
        process.StandardInput.Close();
        var errors = await process.StandardError.ReadToEndAsync() + await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();

        // Triton's names (nv_*_count, nv_*_duration_us, no _total) break the linter's naming advice,
        // and must stay as they are for Triton's dashboards; any other finding, or a parse error, fails.
        string[] tritonNaming = ["should have \"_total\" suffix", "should not contain abbreviated units", "should not have \"_count\" suffix"];
        var findings = errors.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(line => !(line.StartsWith("nv_inference_", StringComparison.Ordinal) && tritonNaming.Any(line.Contains)))
            .ToList();
        Assert.Empty(findings);
        Assert.Contains("nv_inference_count", errors); // promtool did read the text
    }

    private static long Value(string text, string name, string model, string extra = "")
    {
        var pattern = $"^{Regex.Escape(name)}\\{{model=\"{Regex.Escape(model)}\",version=\"1\"{Regex.Escape(extra)}\\}} (\\S+)$";
        var match = Regex.Match(text, pattern, RegexOptions.Multiline);
        Assert.True(match.Success, $"no sample {name} for {model}{extra}");
        return (long)double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
    }
}
