using System.Net;
using System.Net.Http.Headers;
using MedServe.IntegrationTests.Support;

namespace MedServe.IntegrationTests;

[Collection(ServerCollection.Name)]
public sealed class RegistryTagsTests(ServerFixture server)
{
    [Fact]
    public async Task Tags_and_deletion_refused_while_a_version_serves()
    {
        using (var created = await server.PostJsonAsync("/v1/registry/models", "{\"name\":\"icu\"}"))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        await Register("1.0.0");
        await Register("1.0.1");
        using (var alias = await server.Client.PutAsync("/v1/registry/models/icu/aliases/champion", new StringContent("{\"version\":2,\"reason\":\"go live\"}")))
        {
            Assert.Equal(HttpStatusCode.OK, alias.StatusCode);
        }

        using var tag = await server.Client.PutAsync("/v1/registry/models/icu/versions/2/tags/validated", new StringContent("{\"value\":\"2026-11-27\"}"));
        Assert.Equal("2026-11-27", (await ServerFixture.JsonAsync(tag)).GetProperty("tags").GetProperty("validated").GetString());

        using var refused = await server.Client.DeleteAsync("/v1/registry/models/icu/versions/2");
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("named by the alias 'champion'", (await ServerFixture.JsonAsync(refused)).GetProperty("error").GetString());

        using var deleted = await server.Client.DeleteAsync("/v1/registry/models/icu/versions/1");
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);
        var model = await ServerFixture.JsonAsync(await server.Client.GetAsync("/v1/registry/models/icu"));
        Assert.Equal([2L], model.GetProperty("versions").EnumerateArray().Select(v => v.GetProperty("version").GetInt64()));
        Assert.Equal(2, model.GetProperty("serving").GetProperty("serving").GetInt64());
    }

    private async Task Register(string version)
    {
        using var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "samples", "risk.onnx")));
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(file, "model", "risk.onnx");
        form.Add(new StringContent("{\"version\":\"" + version + "\"}"), "metadata");
        using var response = await server.Client.PostAsync("/v1/registry/models/icu/versions", form);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }
}
