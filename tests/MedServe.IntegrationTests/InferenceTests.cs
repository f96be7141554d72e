using System.Globalization;
using System.IO.Compression;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using MedServe.IntegrationTests.Support;
using Microsoft.ML.OnnxRuntime;

namespace MedServe.IntegrationTests;

[Collection(ServerCollection.Name)]
public sealed class InferenceTests(ServerFixture server)
{
    private static readonly float[] Patients = LoadPatients(3);

    [Fact]
    public async Task Json_inference_on_risk_matches_the_fastapi_peers_reference_output()
    {
        var ones = string.Join(",", Enumerable.Repeat("1", 30));
        using var response = await server.PostJsonAsync("/v2/models/risk/infer",
            $$"""{"id":"req-7","inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[{{ones}}]}]}""");
        var json = await ServerFixture.JsonAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", ServerFixture.ContentType(response)?.MediaType);
        Assert.Equal("req-7", json.GetProperty("id").GetString());
        Assert.Equal("risk", json.GetProperty("model_name").GetString());
        Assert.Equal("1", json.GetProperty("model_version").GetString());
        var output = json.GetProperty("outputs")[0];
        Assert.Equal("output", output.GetProperty("name").GetString());
        Assert.Equal("FP32", output.GetProperty("datatype").GetString());
        Assert.Equal([1L, 1L], output.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
        Assert.Equal(0.5740907, output.GetProperty("data")[0].GetDouble(), 6);
    }

    [Fact]
    public async Task Nested_json_data_is_accepted_row_major()
    {
        var rows = string.Join(",", Enumerable.Range(0, 3).Select(r => "[" + string.Join(",", Patients.Skip(r * 30).Take(30).Select(F)) + "]"));
        using var response = await server.PostJsonAsync("/v2/models/breast-cancer/infer",
            $$"""{"inputs":[{"name":"features","shape":[3,30],"datatype":"FP32","data":[{{rows}}]}]}""");
        var json = await ServerFixture.JsonAsync(response);

        var expected = RunDirect("breast-cancer", "features", "probability", Patients, [3, 30]);
        var actual = json.GetProperty("outputs")[0].GetProperty("data").EnumerateArray().Select(d => d.GetSingle()).ToArray();
        Assert.Equal(expected, actual);
    }

    [Fact]
    public async Task Tritonclient_binary_request_gives_binary_output_equal_to_onnx_runtime()
    {
        // Exactly what tritonclient.http sends by default: binary inputs, outputs asked with binary_data.
        var raw = MemoryMarshal.AsBytes(Patients.AsSpan()).ToArray();
        var header = $$$"""{"inputs":[{"name":"features","shape":[3,30],"datatype":"FP32","parameters":{"binary_data_size":{{{raw.Length}}}}}],"outputs":[{"name":"probability","parameters":{"binary_data":true}}]}""";
        using var response = await server.PostBinaryAsync("/v2/models/breast-cancer/infer", header, raw);
        var (json, binary) = await ServerFixture.SplitAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/octet-stream", ServerFixture.ContentType(response)?.MediaType);
        var output = json.GetProperty("outputs")[0];
        Assert.Equal(12, output.GetProperty("parameters").GetProperty("binary_data_size").GetInt32());
        Assert.False(output.TryGetProperty("data", out _));
        var expected = RunDirect("breast-cancer", "features", "probability", Patients, [3, 30]);
        Assert.Equal(expected, MemoryMarshal.Cast<byte, float>(binary).ToArray());
    }

    [Fact]
    public async Task Binary_data_output_with_no_outputs_listed_returns_every_output_binary()
    {
        // tritonclient.http adds binary_data_output when the caller names no outputs.
        var raw = MemoryMarshal.AsBytes(Patients.AsSpan(0, 30)).ToArray();
        var header = """{"inputs":[{"name":"features","shape":[1,30],"datatype":"FP32","parameters":{"binary_data_size":120}}],"parameters":{"binary_data_output":true}}""";
        using var response = await server.PostBinaryAsync("/v2/models/breast-cancer/infer", header, raw);
        var (json, binary) = await ServerFixture.SplitAsync(response);

        Assert.Equal(4, json.GetProperty("outputs")[0].GetProperty("parameters").GetProperty("binary_data_size").GetInt32());
        Assert.Equal(RunDirect("breast-cancer", "features", "probability", Patients[..30], [1, 30]), MemoryMarshal.Cast<byte, float>(binary).ToArray());
    }

    [Fact]
    public async Task Resnet18_embeds_a_batch_of_two_images_like_onnx_runtime_does()
    {
        var random = new Random(7);
        var images = new float[2 * 3 * 224 * 224];
        for (var i = 0; i < images.Length; i++)
        {
            images[i] = (float)(random.NextDouble() * 2 - 1);
        }

        var raw = MemoryMarshal.AsBytes(images.AsSpan()).ToArray();
        var header = $$$"""{"inputs":[{"name":"image","shape":[2,3,224,224],"datatype":"FP32","parameters":{"binary_data_size":{{{raw.Length}}}}}],"outputs":[{"name":"embedding","parameters":{"binary_data":true}}]}""";
        using var response = await server.PostBinaryAsync("/v2/models/resnet18/infer", header, raw);
        var (json, binary) = await ServerFixture.SplitAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal([2L, 512L], json.GetProperty("outputs")[0].GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
        var served = MemoryMarshal.Cast<byte, float>(binary).ToArray();
        var direct = RunDirect("resnet18", "image", "embedding", images, [2, 3, 224, 224]);
        Assert.Equal(direct.Length, served.Length);
        for (var i = 0; i < direct.Length; i++)
        {
            Assert.Equal(direct[i], served[i], 4);
        }

        // Batching does not change a row: image 2 alone gives the same embedding as in the batch.
        var second = RunDirect("resnet18", "image", "embedding", images[(3 * 224 * 224)..], [1, 3, 224, 224]);
        for (var i = 0; i < 512; i++)
        {
            Assert.Equal(second[i], served[512 + i], 3);
        }
    }

    [Fact]
    public async Task Versioned_route_and_gzip_body_work_together()
    {
        var json = $$"""{"inputs":[{"name":"features","shape":[1,30],"datatype":"FP32","data":[{{string.Join(",", Patients.Take(30).Select(F))}}]}]}""";
        using var compressed = new MemoryStream();
        using (var gzip = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(Encoding.UTF8.GetBytes(json));
        }

        var content = new ByteArrayContent(compressed.ToArray());
        content.Headers.ContentEncoding.Add("gzip");
        using var response = await server.Client.PostAsync("/v2/models/breast-cancer/versions/1/infer", content);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var probability = (await ServerFixture.JsonAsync(response)).GetProperty("outputs")[0].GetProperty("data")[0].GetSingle();
        Assert.Equal(RunDirect("breast-cancer", "features", "probability", Patients[..30], [1, 30])[0], probability);
    }

    private float[] RunDirect(string model, string input, string output, float[] data, long[] shape)
    {
        using var session = new InferenceSession(Path.Combine(server.Repository, model, "1", "model.onnx"));
        using var value = OrtValue.CreateTensorValueFromMemory(data, shape);
        using var results = session.Run(new RunOptions(), [input], [value], [output]);
        return results[0].GetTensorDataAsSpan<float>().ToArray();
    }

    private static float[] LoadPatients(int count) =>
        File.ReadLines(Path.Combine(AppContext.BaseDirectory, "samples", "wdbc.csv")).Skip(1).Take(count)
            .SelectMany(line => line.Split(',')[..30].Select(v => float.Parse(v, CultureInfo.InvariantCulture)))
            .ToArray();

    private static string F(float value) => value.ToString("R", CultureInfo.InvariantCulture);
}
