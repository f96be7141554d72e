using System.Net;
using MedServe.IntegrationTests.Support;

namespace MedServe.IntegrationTests;

[Collection(ServerCollection.Name)]
public sealed class ServerApiTests(ServerFixture server)
{
    [Fact]
    public async Task Live_and_ready_answer_true_with_200()
    {
        using var live = await server.Client.GetAsync("/v2/health/live");
        using var ready = await server.Client.GetAsync("/v2/health/ready");

        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.True((await ServerFixture.JsonAsync(live)).GetProperty("live").GetBoolean());
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.True((await ServerFixture.JsonAsync(ready)).GetProperty("ready").GetBoolean());
    }

    [Fact]
    public async Task Server_metadata_lists_name_version_and_extensions()
    {
        using var response = await server.Client.GetAsync("/v2");
        var json = await ServerFixture.JsonAsync(response);

        Assert.Equal("medserve", json.GetProperty("name").GetString());
        Assert.False(string.IsNullOrEmpty(json.GetProperty("version").GetString()));
        var extensions = json.GetProperty("extensions").EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.Contains("binary_tensor_data", extensions);
        Assert.Contains("model_repository", extensions);
        Assert.Contains("model_configuration", extensions);
        Assert.Contains("statistics", extensions);
    }

    [Fact]
    public async Task Unknown_route_is_a_json_404()
    {
        using var response = await server.Client.GetAsync("/v2/nothing/here");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("no route", (await ServerFixture.JsonAsync(response)).GetProperty("error").GetString());
    }
}
