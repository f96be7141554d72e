using System.Net;
using MedServe.IntegrationTests.Support;

namespace MedServe.IntegrationTests;

[Collection(ServerCollection.Name)]
public sealed class ModelApiTests(ServerFixture server)
{
    [Theory]
    [InlineData("/v2/models/breast-cancer")]
    [InlineData("/v2/models/breast-cancer/versions/1")]
    public async Task Metadata_gives_the_clean_signature_with_a_batch_dimension(string path)
    {
        using var response = await server.Client.GetAsync(path);
        var json = await ServerFixture.JsonAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("breast-cancer", json.GetProperty("name").GetString());
        Assert.Equal(["1"], json.GetProperty("versions").EnumerateArray().Select(v => v.GetString()!));
        Assert.Equal("onnxruntime_onnx", json.GetProperty("platform").GetString());
        var input = json.GetProperty("inputs").EnumerateArray().Single();
        Assert.Equal("features", input.GetProperty("name").GetString());
        Assert.Equal("FP32", input.GetProperty("datatype").GetString());
        Assert.Equal([-1L, 30L], input.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
        var output = json.GetProperty("outputs").EnumerateArray().Single();
        Assert.Equal("probability", output.GetProperty("name").GetString());
        Assert.Equal([-1L, 1L], output.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
    }

    [Fact]
    public async Task Resnet18_is_served_with_a_dynamic_batch_and_clean_names()
    {
        using var response = await server.Client.GetAsync("/v2/models/resnet18");
        var json = await ServerFixture.JsonAsync(response);

        var input = json.GetProperty("inputs")[0];
        Assert.Equal("image", input.GetProperty("name").GetString());
        Assert.Equal([-1L, 3L, 224L, 224L], input.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
        var output = json.GetProperty("outputs")[0];
        Assert.Equal("embedding", output.GetProperty("name").GetString());
        Assert.Equal([-1L, 512L], output.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
    }

    [Theory]
    [InlineData("/v2/models/nope", "unknown model 'nope'")]
    [InlineData("/v2/models/breast-cancer/versions/7", "unknown version '7'")]
    [InlineData("/v2/models/nope/config", "unknown model 'nope'")]
    [InlineData("/v2/models/nope/ready", "unknown model 'nope'")]
    public async Task Unknown_model_or_version_is_404_with_an_error(string path, string message)
    {
        using var response = await server.Client.GetAsync(path);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains(message, (await ServerFixture.JsonAsync(response)).GetProperty("error").GetString());
    }

    [Fact]
    public async Task Ready_is_true_for_a_loaded_version()
    {
        using var response = await server.Client.GetAsync("/v2/models/risk/versions/1/ready");
        var json = await ServerFixture.JsonAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("risk", json.GetProperty("name").GetString());
        Assert.True(json.GetProperty("ready").GetBoolean());
    }

    [Fact]
    public async Task Config_is_tritons_json_model_config()
    {
        using var response = await server.Client.GetAsync("/v2/models/breast-cancer/config");
        var json = await ServerFixture.JsonAsync(response);

        Assert.Equal("breast-cancer", json.GetProperty("name").GetString());
        Assert.Equal("onnxruntime_onnx", json.GetProperty("platform").GetString());
        Assert.Equal(64, json.GetProperty("max_batch_size").GetInt32());
        var input = json.GetProperty("input")[0];
        Assert.Equal("TYPE_FP32", input.GetProperty("data_type").GetString());
        Assert.Equal([30L], input.GetProperty("dims").EnumerateArray().Select(d => d.GetInt64()));
        Assert.Equal(1, json.GetProperty("version_policy").GetProperty("latest").GetProperty("num_versions").GetInt32());
        Assert.Equal("KIND_CPU", json.GetProperty("instance_group")[0].GetProperty("kind").GetString());
    }

    [Fact]
    public async Task A_model_without_config_is_autocompleted_from_its_onnx_signature()
    {
        using var response = await server.Client.GetAsync("/v2/models/id-bytes/config");
        var json = await ServerFixture.JsonAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(4, json.GetProperty("max_batch_size").GetInt32());
        Assert.Equal(["out", "copy"], json.GetProperty("output").EnumerateArray().Select(o => o.GetProperty("name").GetString()));
        var bytes = json.GetProperty("input").EnumerateArray().Single();
        Assert.Equal("TYPE_STRING", bytes.GetProperty("data_type").GetString());
        Assert.Equal([3L], bytes.GetProperty("dims").EnumerateArray().Select(d => d.GetInt64()));
    }
}
