using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using MedServe.IntegrationTests.Support;

namespace MedServe.IntegrationTests;

/// <summary>The registry's management API: register, alias (a hot swap), serve, roll back.</summary>
[Collection(ServerCollection.Name)]
public sealed class RegistryApiTests(ServerFixture server)
{
    private static readonly string RiskFile = Path.Combine(AppContext.BaseDirectory, "samples", "risk.onnx");

    [Fact]
    public async Task Register_promote_serve_and_roll_back_a_model()
    {
        using (var created = await server.PostJsonAsync("/v1/registry/models", """{"name":"triage","description":"ED triage risk"}"""))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        var first = await Register("triage", "1.0.0", """{"intended_use":"adults in the ED"}""");
        Assert.Equal(1, first.GetProperty("version").GetInt64());
        Assert.StartsWith("sha256:", first.GetProperty("artifact").GetString());
        Assert.Equal("adults in the ED", first.GetProperty("model_card").GetProperty("intended_use").GetString());
        Assert.Equal("input", first.GetProperty("signature").GetProperty("inputs")[0].GetProperty("name").GetString());
        await Register("triage", "1.0.1", "{}");

        var promoted = await PutAlias("triage", "champion", 1, "first release");
        Assert.True(promoted.GetProperty("serving").GetProperty("converged").GetBoolean());
        Assert.Equal("1", await ServedVersion("triage"));

        await PutAlias("triage", "champion", 2, "retrained");
        Assert.Equal("2", await ServedVersion("triage"));

        using (var rollback = await server.PostJsonAsync("/v1/registry/models/triage/rollback", """{"reason":"calibration drift","changed_by":"oncall"}"""))
        {
            var status = (await ServerFixture.JsonAsync(rollback)).GetProperty("serving");
            Assert.Equal(1, status.GetProperty("serving").GetInt64());
        }

        Assert.Equal("1", await ServedVersion("triage"));
        var history = (await ServerFixture.JsonAsync(await server.Client.GetAsync("/v1/registry/models/triage/aliases/history"))).GetProperty("changes");
        Assert.Equal(3, history.GetArrayLength());
        Assert.Equal("rollback: calibration drift", history[2].GetProperty("reason").GetString());
        Assert.Equal("oncall", history[2].GetProperty("changed_by").GetString());

        var model = await ServerFixture.JsonAsync(await server.Client.GetAsync("/v1/registry/models/triage"));
        Assert.Equal(2, model.GetProperty("versions").GetArrayLength());
        Assert.Equal(1, model.GetProperty("aliases").GetProperty("champion").GetInt64());
        Assert.Equal(1, model.GetProperty("serving").GetProperty("intended").GetInt64());
    }

    [Fact]
    public async Task A_monitoring_spec_set_through_the_registry_reaches_the_served_model()
    {
        using (await server.PostJsonAsync("/v1/registry/models", """{"name":"icu-risk","description":""}"""))
        {
        }

        await Register("icu-risk", "1.0.0", "{}");
        await PutAlias("icu-risk", "champion", 1, "first");
        Assert.Equal(MedServe.Repository.MonitoringSpec.Default.Canonical(), server.Models.Find("icu-risk", null).Config.Monitoring.Canonical());

        using (var bad = await server.Client.PutAsync("/v1/registry/models/icu-risk/monitoring", new StringContent("""{"subgroups":["patient_id"]}""")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
            Assert.Contains("never patient_id", (await ServerFixture.JsonAsync(bad)).GetProperty("error").GetString());
        }

        using (var set = await server.Client.PutAsync("/v1/registry/models/icu-risk/monitoring", new StringContent("""{"threshold":0.25,"subgroups":["sex"]}""")))
        {
            var body = await ServerFixture.JsonAsync(set);
            Assert.True(set.StatusCode == HttpStatusCode.OK, body.ToString());
            Assert.Equal(1, body.GetProperty("revision").GetInt64());
        }

        var served = server.Models.Find("icu-risk", null).Config.Monitoring;
        Assert.Equal((0.25, "sex"), (served.Threshold, served.Subgroups.Single()));
        Assert.Equal("1", await ServedVersion("icu-risk"));
        var history = await ServerFixture.JsonAsync(await server.Client.GetAsync("/v1/registry/models/icu-risk/monitoring"));
        Assert.Equal(0.25, history.GetProperty("spec").GetProperty("threshold").GetDouble());
        Assert.Equal(1, history.GetProperty("history").GetArrayLength());
        Assert.Equal(HttpStatusCode.NotFound, (await server.Client.GetAsync("/v1/registry/models/nobody/monitoring")).StatusCode);
    }

    [Fact]
    public async Task Registry_errors_say_what_is_wrong()
    {
        using (var created = await server.PostJsonAsync("/v1/registry/models", """{"name":"ward"}"""))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        using var duplicate = await server.PostJsonAsync("/v1/registry/models", """{"name":"ward"}""");
        Assert.Equal(HttpStatusCode.Conflict, duplicate.StatusCode);

        using var badVersion = await RegisterResponse("ward", "1.0", "{}");
        Assert.Equal(HttpStatusCode.BadRequest, badVersion.StatusCode);
        Assert.Contains("not a semantic version", (await ServerFixture.JsonAsync(badVersion)).GetProperty("error").GetString());

        using var unknown = await RegisterResponse("nobody", "1.0.0", "{}");
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);

        using var alias = await server.Client.PutAsync("/v1/registry/models/ward/aliases/champion", new StringContent("""{"version":9}"""));
        Assert.Equal(HttpStatusCode.NotFound, alias.StatusCode);
        Assert.Contains("has no version 9", (await ServerFixture.JsonAsync(alias)).GetProperty("error").GetString());
    }

    [Fact]
    public async Task The_registry_api_is_described_by_an_openapi_document()
    {
        using var response = await server.Client.GetAsync("/v1/registry/openapi.json");
        var document = await ServerFixture.JsonAsync(response);

        Assert.Equal("3.0.3", document.GetProperty("openapi").GetString());
        Assert.True(document.GetProperty("paths").TryGetProperty("/v1/registry/models/{model}/rollback", out _));
    }

    private async Task<JsonElement> Register(string model, string version, string modelCard)
    {
        using var response = await RegisterResponse(model, version, modelCard);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        return await ServerFixture.JsonAsync(response);
    }

    private Task<HttpResponseMessage> RegisterResponse(string model, string version, string modelCard)
    {
        var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(File.ReadAllBytes(RiskFile));
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(file, "model", "risk.onnx");
        var metadata = $$"""{"version":"{{version}}","registered_by":"tester","model_card":{{modelCard}},"lineage":{"training_data":"sha256:abc"}""" + "}";
        form.Add(new StringContent(metadata), "metadata");
        return server.Client.PostAsync($"/v1/registry/models/{model}/versions", form);
    }

    private async Task<JsonElement> PutAlias(string model, string alias, long version, string reason)
    {
        using var response = await server.Client.PutAsync($"/v1/registry/models/{model}/aliases/{alias}",
            new StringContent(JsonSerializer.Serialize(new { version, reason, changed_by = "tester" })));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await ServerFixture.JsonAsync(response);
    }

    private async Task<string?> ServedVersion(string model)
    {
        var ones = string.Join(",", Enumerable.Repeat("1", 30));
        using var response = await server.PostJsonAsync($"/v2/models/{model}/infer",
            $$"""{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[{{ones}}]}]}""");
        var json = await ServerFixture.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, json.ToString());
        Assert.Equal(0.5740907, json.GetProperty("outputs")[0].GetProperty("data")[0].GetDouble(), 6);
        return json.GetProperty("model_version").GetString();
    }
}
