using System.Net;
using System.Text.Json;
using MedServe.IntegrationTests.Support;

namespace MedServe.IntegrationTests;

/// <summary>MLflow's update, rename, delete, delete-tag and transition-stage, as MlflowClient sends them (PATCH, DELETE with bodies).</summary>
[Collection(ServerCollection.Name)]
public sealed class MlflowLifecycleTests(ServerFixture server)
{
    private static readonly string RiskFile = Path.Combine(AppContext.BaseDirectory, "samples", "risk.onnx");

    [Fact]
    public async Task Update_stage_tags_rename_and_delete()
    {
        await Send(HttpMethod.Post, "registered-models/create", new { name = "mf-life" });
        await Send(HttpMethod.Post, "model-versions/create", new { name = "mf-life", source = RiskFile });
        await Send(HttpMethod.Post, "model-versions/create", new { name = "mf-life", source = RiskFile });

        var updated = await Send(HttpMethod.Patch, "registered-models/update", new { name = "mf-life", description = "ward deterioration" });
        Assert.Equal("ward deterioration", updated.GetProperty("registered_model").GetProperty("description").GetString());
        var version = await Send(HttpMethod.Patch, "model-versions/update", new { name = "mf-life", version = "1", description = "baseline" });
        Assert.Equal("baseline", version.GetProperty("model_version").GetProperty("description").GetString());

        var production = await Send(HttpMethod.Post, "model-versions/transition-stage", new { name = "mf-life", version = "1", stage = "production", archive_existing_versions = false });
        Assert.Equal("Production", production.GetProperty("model_version").GetProperty("current_stage").GetString());
        Assert.Equal(["production"], production.GetProperty("model_version").GetProperty("aliases").EnumerateArray().Select(a => a.GetString()));
        var second = await Send(HttpMethod.Post, "model-versions/transition-stage", new { name = "mf-life", version = "2", stage = "Production", archive_existing_versions = true });
        Assert.Equal(["production"], second.GetProperty("model_version").GetProperty("aliases").EnumerateArray().Select(a => a.GetString()));
        var first = (await Send(HttpMethod.Get, "model-versions/get?name=mf-life&version=1", null)).GetProperty("model_version");
        Assert.Equal("Archived", first.GetProperty("current_stage").GetString());

        using (var badStage = await Raw(HttpMethod.Post, "model-versions/transition-stage", new { name = "mf-life", version = "1", stage = "Live" }))
        {
            Assert.Equal(HttpStatusCode.BadRequest, badStage.StatusCode);
            Assert.Equal("INVALID_PARAMETER_VALUE", (await ServerFixture.JsonAsync(badStage)).GetProperty("error_code").GetString());
        }

        await Send(HttpMethod.Post, "registered-models/set-tag", new { name = "mf-life", key = "team", value = "icu" });
        await Send(HttpMethod.Delete, "registered-models/delete-tag", new { name = "mf-life", key = "team" });
        Assert.Empty((await Send(HttpMethod.Get, "registered-models/get?name=mf-life", null)).GetProperty("registered_model").GetProperty("tags").EnumerateArray());

        // An aliased (possibly serving) model is not renamed or deleted under its clients.
        using (var refused = await Raw(HttpMethod.Post, "registered-models/rename", new { name = "mf-life", new_name = "mf-life-2" }))
        {
            Assert.Contains("alias 'production'", (await ServerFixture.JsonAsync(refused)).GetProperty("message").GetString());
        }

        await Send(HttpMethod.Post, "model-versions/transition-stage", new { name = "mf-life", version = "2", stage = "None" });
        await Send(HttpMethod.Delete, "model-versions/delete", new { name = "mf-life", version = "1" });
        var renamed = await Send(HttpMethod.Post, "registered-models/rename", new { name = "mf-life", new_name = "mf-life-2" });
        Assert.Equal("mf-life-2", renamed.GetProperty("registered_model").GetProperty("name").GetString());
        Assert.Equal("2", renamed.GetProperty("registered_model").GetProperty("latest_versions")[0].GetProperty("version").GetString());

        await Send(HttpMethod.Delete, "registered-models/delete", new { name = "mf-life-2" });
        using var gone = await Raw(HttpMethod.Get, "registered-models/get?name=mf-life-2", null);
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
    }

    private async Task<JsonElement> Send(HttpMethod method, string path, object? body)
    {
        using var response = await Raw(method, path, body);
        var json = await ServerFixture.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, $"{method} {path}: {json}");
        return json;
    }

    private Task<HttpResponseMessage> Raw(HttpMethod method, string path, object? body)
    {
        var request = new HttpRequestMessage(method, "/api/2.0/mlflow/" + path);
        if (body is not null)
        {
            request.Content = new StringContent(JsonSerializer.Serialize(body), System.Text.Encoding.UTF8, "application/json");
        }

        return server.Client.SendAsync(request);
    }
}
