using System.Net;
using System.Text.Json;
using MedServe.IntegrationTests.Support;

namespace MedServe.IntegrationTests;

/// <summary>The statistics engine as clients reach it: POST /v1/statistics/{kind} and `medserve stats KIND`.</summary>
[Collection(ServerCollection.Name)]
public sealed class StatisticsApiTests(ServerFixture server)
{
    // scipy 1.10.1: ttest_ind([1.2, 2.4, 3.1, 4.8, 5.0], [2.2, 2.9, 4.1, 6.3, 6.8, 7.7], equal_var=False)
    private const string WelchInput = """{"a":[1.2,2.4,3.1,4.8,5.0],"b":[2.2,2.9,4.1,6.3,6.8,7.7]}""";

    [Fact]
    public async Task A_statistic_is_computed_over_http_and_bad_input_names_its_field()
    {
        using var response = await server.PostJsonAsync("/v1/statistics/welch_ttest", WelchInput);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var result = await ServerFixture.JsonAsync(response);
        Assert.Equal(Reference.T, result.GetProperty("t").GetDouble(), 12);
        Assert.Equal(Reference.P, result.GetProperty("p").GetDouble(), 12);

        using var bad = await server.PostJsonAsync("/v1/statistics/welch_ttest", """{"a":[1],"b":[1,2,3]}""");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("'a' needs at least 2 values", (await ServerFixture.JsonAsync(bad)).GetProperty("error").GetString());

        using var anonymous = server.CreateClient(null);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsync("/v1/statistics/welch_ttest", new StringContent(WelchInput))).StatusCode);
    }

    [Fact]
    public async Task The_cli_reads_json_on_stdin_and_writes_json_on_stdout()
    {
        var (exit, output, _) = await ServerProcess.RunWithInputAsync(Path.GetTempPath(), WelchInput, "stats", "welch_ttest");
        Assert.Equal(0, exit);
        var result = JsonDocument.Parse(output).RootElement;
        Assert.Equal(Reference.T, result.GetProperty("t").GetDouble(), 12);

        var (badExit, _, error) = await ServerProcess.RunWithInputAsync(Path.GetTempPath(), """{"labels":[1,1],"scores":[0.3,0.6]}""", "stats", "clinical_metrics");
        Assert.Equal(2, badExit);
        Assert.Contains("'labels' are all 1", error);
    }

    private static class Reference
    {
        public const double T = -1.456310917105219;
        public const double P = 0.17981701461905344;
    }
}
