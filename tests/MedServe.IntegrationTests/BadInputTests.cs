using System.Net;
using System.Text;
using MedServe.IntegrationTests.Support;

namespace MedServe.IntegrationTests;

/// <summary>Each bad request gets a clear 4xx error naming what is wrong, and the server goes on serving.</summary>
[Collection(ServerCollection.Name)]
public sealed class BadInputTests(ServerFixture server)
{
    private static readonly string Row = string.Join(",", Enumerable.Repeat("0.5", 30));

    [Theory]
    [InlineData("{\"inputs\":[{\"name\":\"input\",", "malformed JSON")]
    [InlineData("[1,2]", "must be a JSON object")]
    [InlineData("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,30],\"datatype\":\"FP31\",\"data\":[1]}]}", "unknown datatype 'FP31'")]
    [InlineData("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,30],\"datatype\":\"FP32\",\"data\":[1,2,3]}]}", "input 'input' has 3 data elements, but shape needs 30")]
    [InlineData("{\"inputs\":[{\"name\":\"inptu\",\"shape\":[1,30],\"datatype\":\"FP32\",\"data\":[ROW]}]}", "unexpected input 'inptu'")]
    [InlineData("{\"inputs\":[]}", "no 'inputs'")]
    [InlineData("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,30],\"datatype\":\"INT32\",\"data\":[ROW]}]}", "input 'input' element 0: INT32 data must be an integer")]
    [InlineData("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,29],\"datatype\":\"FP32\",\"data\":[ROW]}]}", "input 'input' has more data elements than its shape holds (29)")]
    [InlineData("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,30],\"datatype\":\"FP64\",\"data\":[ROW]}]}", "input 'input' has datatype FP64, but model 'risk' expects FP32")]
    [InlineData("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,30],\"datatype\":\"FP32\",\"data\":[ROW]}],\"outputs\":[{\"name\":\"nope\"}]}", "unexpected output 'nope'")]
    [InlineData("{\"inputs\":[{\"name\":\"input\",\"shape\":[65,30],\"datatype\":\"FP32\",\"data\":[0]}]}", "has 1 data elements, but shape needs 1950")]
    [InlineData("{\"inputs\":[{\"name\":\"input\",\"shape\":[30],\"datatype\":\"FP32\",\"data\":[ROW]}]}", "input 'input' has shape [30], but model 'risk' expects [-1,30]")]
    public async Task Bad_json_requests_are_400_with_a_message_that_says_what_and_where(string body, string message)
    {
        using var response = await server.PostJsonAsync("/v2/models/risk/infer", body.Replace("ROW", Row, StringComparison.Ordinal));
        var error = (await ServerFixture.JsonAsync(response)).GetProperty("error").GetString();

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(message, error);
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task A_missing_input_is_named()
    {
        using var response = await server.PostJsonAsync("/v2/models/id-fp32/infer", "{\"inputs\":[{\"name\":\"other\",\"shape\":[1,3],\"datatype\":\"FP32\",\"data\":[1,2,3]}]}");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("unexpected input 'other'", (await ServerFixture.JsonAsync(response)).GetProperty("error").GetString());
    }

    [Fact]
    public async Task A_batch_above_max_batch_size_is_refused()
    {
        var data = string.Join(",", Enumerable.Repeat("0", 65 * 30));
        using var response = await server.PostJsonAsync("/v2/models/risk/infer",
            $$"""{"inputs":[{"name":"input","shape":[65,30],"datatype":"FP32","data":[{{data}}]}]}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("batch size 65, above model 'risk''s max_batch_size 64", (await ServerFixture.JsonAsync(response)).GetProperty("error").GetString());
    }

    [Theory]
    [InlineData(10_000, "Inference-Header-Content-Length is 10000, but the body has only")]
    [InlineData(5, "malformed JSON")]
    public async Task A_wrong_inference_header_length_is_400(int declared, string message)
    {
        var header = Encoding.UTF8.GetBytes("{\"inputs\":[{\"name\":\"input\",\"shape\":[1,30],\"datatype\":\"FP32\",\"parameters\":{\"binary_data_size\":120}}]}");
        var content = new ByteArrayContent(header.Concat(new byte[120]).ToArray());
        content.Headers.Add("Inference-Header-Content-Length", declared.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var response = await server.Client.PostAsync("/v2/models/risk/infer", content);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(message, (await ServerFixture.JsonAsync(response)).GetProperty("error").GetString());
        await AssertStillServingAsync();
    }

    [Theory]
    [InlineData(120, 100, "only 100 bytes of binary data remain")]
    [InlineData(120, 130, "add up to 120 bytes, but 130 bytes follow the JSON header")]
    [InlineData(100, 100, "input 'input' has 100 bytes of data, but shape [1,30] of FP32 needs 120")]
    public async Task Binary_sizes_that_do_not_add_up_are_400(int declared, int sent, string message)
    {
        using var response = await server.PostBinaryAsync("/v2/models/risk/infer",
            $$$"""{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","parameters":{"binary_data_size":{{{declared}}}}}]}""", new byte[sent]);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(message, (await ServerFixture.JsonAsync(response)).GetProperty("error").GetString());
    }

    [Fact]
    public async Task A_body_over_the_limit_is_413()
    {
        // Expect: 100-continue lets the server refuse on Content-Length before the body is sent.
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v2/models/risk/infer") { Content = new ByteArrayContent(new byte[ServerFixture.BodyLimit + 1]) };
        request.Headers.ExpectContinue = true;
        using var response = await server.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Contains("above the limit", (await ServerFixture.JsonAsync(response)).GetProperty("error").GetString());
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task A_corrupt_onnx_file_is_reported_in_the_index_and_hurts_no_one()
    {
        using var index = await server.PostJsonAsync("/v2/repository/index", "");
        var entries = (await ServerFixture.JsonAsync(index)).EnumerateArray().ToList();
        var corrupt = entries.Single(e => e.GetProperty("name").GetString() == "corrupt");

        Assert.Equal("UNAVAILABLE", corrupt.GetProperty("state").GetString());
        Assert.Contains("model.onnx is not a readable ONNX model", corrupt.GetProperty("reason").GetString());
        using var infer = await server.PostJsonAsync("/v2/models/corrupt/infer", "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}]}");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, infer.StatusCode);
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task Duplicate_outputs_and_inputs_are_400_over_json_and_binary_and_invalid_argument_over_grpc()
    {
        var outputs = string.Join(",", Enumerable.Repeat("{\"name\":\"out\"}", 100_000));
        using (var json = await server.PostJsonAsync("/v2/models/id-fp32/infer",
            $$"""{"inputs":[{"name":"in","shape":[1,3],"datatype":"FP32","data":[1,2,3]}],"outputs":[{"name":"copy"},{{outputs}}]}"""))
        {
            Assert.Equal(HttpStatusCode.BadRequest, json.StatusCode);
            Assert.Equal("output 'out' is requested more than once", (await ServerFixture.JsonAsync(json)).GetProperty("error").GetString());
        }

        using (var binary = await server.PostBinaryAsync("/v2/models/id-fp32/infer",
            """{"inputs":[{"name":"in","shape":[1,3],"datatype":"FP32","parameters":{"binary_data_size":12}}],"outputs":[{"name":"out","parameters":{"binary_data":true}},{"name":"out"}]}""", new byte[12]))
        {
            Assert.Equal(HttpStatusCode.BadRequest, binary.StatusCode);
            Assert.Equal("output 'out' is requested more than once", (await ServerFixture.JsonAsync(binary)).GetProperty("error").GetString());
        }

        using (var inputs = await server.PostJsonAsync("/v2/models/id-fp32/infer",
            """{"inputs":[{"name":"in","shape":[1,3],"datatype":"FP32","data":[1,2,3]},{"name":"in","shape":[1,3],"datatype":"FP32","data":[4,5,6]}]}"""))
        {
            Assert.Equal(HttpStatusCode.BadRequest, inputs.StatusCode);
            Assert.Equal("input 'in' is given more than once", (await ServerFixture.JsonAsync(inputs)).GetProperty("error").GetString());
        }

        MedServe.Grpc.Protocol.ModelInferRequest Grpc(int inputCopies, params string[] outputNames)
        {
            var request = new MedServe.Grpc.Protocol.ModelInferRequest { ModelName = "id-fp32" };
            for (var i = 0; i < inputCopies; i++)
            {
                var input = new MedServe.Grpc.Protocol.ModelInferRequest.Types.InferInputTensor { Name = "in", Datatype = "FP32", Shape = { 1, 3 } };
                input.Contents = new MedServe.Grpc.Protocol.InferTensorContents();
                input.Contents.Fp32Contents.Add([1f, 2f, 3f]);
                request.Inputs.Add(input);
            }

            foreach (var name in outputNames)
            {
                request.Outputs.Add(new MedServe.Grpc.Protocol.ModelInferRequest.Types.InferRequestedOutputTensor { Name = name });
            }

            return request;
        }

        var output = await Assert.ThrowsAsync<global::Grpc.Core.RpcException>(() => server.Grpc.ModelInferAsync(Grpc(1, "copy", "out", "out")).ResponseAsync);
        Assert.Equal((global::Grpc.Core.StatusCode.InvalidArgument, "output 'out' is requested more than once"), (output.StatusCode, output.Status.Detail));
        var input = await Assert.ThrowsAsync<global::Grpc.Core.RpcException>(() => server.Grpc.ModelInferAsync(Grpc(2, "out")).ResponseAsync);
        Assert.Equal((global::Grpc.Core.StatusCode.InvalidArgument, "input 'in' is given more than once"), (input.StatusCode, input.Status.Detail));

        // Each output once is still fine.
        var answered = await server.Grpc.ModelInferAsync(Grpc(1, "copy", "out"));
        Assert.Equal(["copy", "out"], answered.Outputs.Select(o => o.Name));
    }

    private async Task AssertStillServingAsync()
    {
        using var response = await server.PostJsonAsync("/v2/models/risk/infer",
            $$"""{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[{{Row}}]}]}""");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }
}
