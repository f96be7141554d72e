using MedServe.IntegrationTests.Support;

namespace MedServe.IntegrationTests;

[Collection(ServerCollection.Name)]
public sealed class StatisticsTests(ServerFixture server)
{
    [Fact]
    public async Task Statistics_count_successes_failures_and_batches_in_tritons_fields()
    {
        for (var i = 0; i < 3; i++)
        {
            using var ok = await server.PostJsonAsync("/v2/models/id-uint32/infer",
                """{"inputs":[{"name":"in","shape":[2,3],"datatype":"UINT32","data":[1,2,3,4,5,6]}]}""");
            Assert.True(ok.IsSuccessStatusCode);
        }

        using var bad = await server.PostJsonAsync("/v2/models/id-uint32/infer",
            """{"inputs":[{"name":"in","shape":[2,3],"datatype":"INT32","data":[1,2,3,4,5,6]}]}""");

        using var response = await server.Client.GetAsync("/v2/models/id-uint32/versions/1/stats");
        var stats = (await ServerFixture.JsonAsync(response)).GetProperty("model_stats")[0];

        Assert.Equal("id-uint32", stats.GetProperty("name").GetString());
        Assert.Equal("1", stats.GetProperty("version").GetString());
        Assert.Equal(6, stats.GetProperty("inference_count").GetInt64());
        Assert.Equal(3, stats.GetProperty("execution_count").GetInt64());
        Assert.True(stats.GetProperty("last_inference").GetInt64() > 1_700_000_000_000);
        var inference = stats.GetProperty("inference_stats");
        Assert.Equal(3, inference.GetProperty("success").GetProperty("count").GetInt64());
        Assert.True(inference.GetProperty("success").GetProperty("ns").GetInt64() > 0);
        Assert.Equal(1, inference.GetProperty("fail").GetProperty("count").GetInt64());
        Assert.Equal(3, inference.GetProperty("queue").GetProperty("count").GetInt64());
        Assert.Equal(3, inference.GetProperty("compute_infer").GetProperty("count").GetInt64());
        var batch = stats.GetProperty("batch_stats").EnumerateArray().Single();
        Assert.Equal(2, batch.GetProperty("batch_size").GetInt64());
        Assert.Equal(3, batch.GetProperty("compute_infer").GetProperty("count").GetInt64());
    }

    [Fact]
    public async Task All_model_statistics_include_every_ready_version()
    {
        using var response = await server.Client.GetAsync("/v2/models/stats");
        var names = (await ServerFixture.JsonAsync(response)).GetProperty("model_stats").EnumerateArray()
            .Select(s => s.GetProperty("name").GetString()).ToList();

        Assert.Contains("breast-cancer", names);
        Assert.Contains("resnet18", names);
        Assert.DoesNotContain("corrupt", names);
    }
}
