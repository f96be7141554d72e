using System.Net;
using System.Text.Json;
using MedServe.IntegrationTests.Support;

namespace MedServe.IntegrationTests;

[Collection(ServerCollection.Name)]
public sealed class RepositoryApiTests(ServerFixture server)
{
    private static readonly string Request =
        $$"""{"inputs":[{"name":"in","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}""";

    [Fact]
    public async Task Index_lists_every_model_version_with_its_state()
    {
        using var response = await server.PostJsonAsync("/v2/repository/index", "{}");
        var entries = (await ServerFixture.JsonAsync(response)).EnumerateArray().ToList();

        var risk = entries.Single(e => e.GetProperty("name").GetString() == "risk");
        Assert.Equal("1", risk.GetProperty("version").GetString());
        Assert.Equal("READY", risk.GetProperty("state").GetString());
        using var readyOnly = await server.PostJsonAsync("/v2/repository/index", "{\"ready\":true}");
        Assert.DoesNotContain((await ServerFixture.JsonAsync(readyOnly)).EnumerateArray(), e => e.GetProperty("name").GetString() == "corrupt");
    }

    [Fact]
    public async Task Unload_then_load_takes_a_model_out_of_service_and_back()
    {
        using (var unload = await server.PostJsonAsync("/v2/repository/models/id-uint16/unload", "{\"parameters\":{\"unload_dependents\":false}}"))
        {
            Assert.Equal(HttpStatusCode.OK, unload.StatusCode);
        }

        using (var ready = await server.Client.GetAsync("/v2/models/id-uint16/ready"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        }

        using (var index = await server.PostJsonAsync("/v2/repository/index", ""))
        {
            var entry = (await ServerFixture.JsonAsync(index)).EnumerateArray().Single(e => e.GetProperty("name").GetString() == "id-uint16");
            Assert.Equal("UNAVAILABLE", entry.GetProperty("state").GetString());
            Assert.Equal("unloaded", entry.GetProperty("reason").GetString());
        }

        using (var load = await server.PostJsonAsync("/v2/repository/models/id-uint16/load", "{}"))
        {
            Assert.Equal(HttpStatusCode.OK, load.StatusCode);
        }

        using var after = await server.Client.GetAsync("/v2/models/id-uint16/ready");
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    [Fact]
    public async Task Reloading_while_requests_flow_drops_none_of_them()
    {
        using var stop = new CancellationTokenSource();
        var failures = 0;
        var served = 0;
        var traffic = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var response = await server.PostJsonAsync("/v2/models/id-fp32/infer", Request);
                Interlocked.Increment(ref response.IsSuccessStatusCode ? ref served : ref failures);
            }
        })).ToArray();

        for (var i = 0; i < 3; i++)
        {
            using var load = await server.PostJsonAsync("/v2/repository/models/id-fp32/load", "");
            Assert.Equal(HttpStatusCode.OK, load.StatusCode);
        }

        await stop.CancelAsync();
        await Task.WhenAll(traffic);
        Assert.Equal(0, failures);
        Assert.True(served > 0);
    }

    [Fact]
    public async Task Load_with_a_config_override_changes_the_served_config()
    {
        var config = JsonSerializer.Serialize(new { name = "id-int64", platform = "onnxruntime_onnx", max_batch_size = 2 });
        using (var load = await server.PostJsonAsync("/v2/repository/models/id-int64/load", JsonSerializer.Serialize(new { parameters = new { config } })))
        {
            Assert.Equal(HttpStatusCode.OK, load.StatusCode);
        }

        using var response = await server.Client.GetAsync("/v2/models/id-int64/config");
        Assert.Equal(2, (await ServerFixture.JsonAsync(response)).GetProperty("max_batch_size").GetInt32());
    }

    [Fact]
    public async Task Loading_an_unknown_model_is_404_and_a_bad_config_is_400()
    {
        using var unknown = await server.PostJsonAsync("/v2/repository/models/ghost/load", "");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);

        var config = JsonSerializer.Serialize(new { name = "id-int8", max_batch_size = "many" });
        using var bad = await server.PostJsonAsync("/v2/repository/models/id-int8/load", JsonSerializer.Serialize(new { parameters = new { config } }));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("max_batch_size: expected an integer", (await ServerFixture.JsonAsync(bad)).GetProperty("error").GetString());

        // The failed reload left the serving version in place.
        using var ready = await server.Client.GetAsync("/v2/models/id-int8/ready");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
    }
}
