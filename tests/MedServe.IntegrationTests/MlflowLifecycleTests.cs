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
        var created = await Send(HttpMethod.Post, "model-versions/create", new { name = "mf-life", source = RiskFile, description = "v1", run_link = "http://mlflow/runs/1" });
        Assert.Equal("v1", created.GetProperty("model_version").GetProperty("description").GetString());
        Assert.Equal("READY", created.GetProperty("model_version").GetProperty("status").GetString());
        await Send(HttpMethod.Post, "model-versions/create", new { name = "mf-life", source = RiskFile });

        // MLflow stores the description given at creation.
        var fetched = (await Send(HttpMethod.Get, "model-versions/get?name=mf-life&version=1", null)).GetProperty("model_version");
        Assert.Equal(("v1", "http://mlflow/runs/1"), (fetched.GetProperty("description").GetString(), fetched.GetProperty("run_link").GetString()));

        var updated = await Send(HttpMethod.Patch, "registered-models/update", new { name = "mf-life", description = "ward deterioration" });
        Assert.Equal("ward deterioration", updated.GetProperty("registered_model").GetProperty("description").GetString());
        var version = await Send(HttpMethod.Patch, "model-versions/update", new { name = "mf-life", version = "1", description = "baseline" });
        Assert.Equal("baseline", version.GetProperty("model_version").GetProperty("description").GetString());

        // A stage is a stage: it shows in current_stage, never in aliases.
        var production = await Send(HttpMethod.Post, "model-versions/transition-stage", new { name = "mf-life", version = "1", stage = "production", archive_existing_versions = false });
        Assert.Equal("Production", production.GetProperty("model_version").GetProperty("current_stage").GetString());
        Assert.False(production.GetProperty("model_version").TryGetProperty("aliases", out var none) && none.GetArrayLength() > 0);
        var second = await Send(HttpMethod.Post, "model-versions/transition-stage", new { name = "mf-life", version = "2", stage = "Production", archive_existing_versions = true });
        Assert.Equal("Production", second.GetProperty("model_version").GetProperty("current_stage").GetString());
        var first = (await Send(HttpMethod.Get, "model-versions/get?name=mf-life&version=1", null)).GetProperty("model_version");
        Assert.Equal("Archived", first.GetProperty("current_stage").GetString());
        var model = (await Send(HttpMethod.Get, "registered-models/get?name=mf-life", null)).GetProperty("registered_model");
        Assert.Equal(0, model.GetProperty("aliases").GetArrayLength());

        // get_latest_versions: by stage, as MlflowClient sends it (POST with a JSON body); no stage named: one per stage.
        var latest = await Send(HttpMethod.Post, "registered-models/get-latest-versions", new { name = "mf-life", stages = new[] { "Production" } });
        Assert.Equal(["2"], latest.GetProperty("model_versions").EnumerateArray().Select(v => v.GetProperty("version").GetString()));
        var perStage = await Send(HttpMethod.Post, "registered-models/get-latest-versions", new { name = "mf-life" });
        Assert.Equal([("1", "Archived"), ("2", "Production")],
            perStage.GetProperty("model_versions").EnumerateArray().Select(v => (v.GetProperty("version").GetString(), v.GetProperty("current_stage").GetString())).OrderBy(v => v.Item1));

        using (var badStage = await Raw(HttpMethod.Post, "model-versions/transition-stage", new { name = "mf-life", version = "1", stage = "Live" }))
        {
            Assert.Equal(HttpStatusCode.BadRequest, badStage.StatusCode);
            Assert.Equal("INVALID_PARAMETER_VALUE", (await ServerFixture.JsonAsync(badStage)).GetProperty("error_code").GetString());
        }

        await Send(HttpMethod.Post, "registered-models/set-tag", new { name = "mf-life", key = "team", value = "icu" });
        await Send(HttpMethod.Delete, "registered-models/delete-tag", new { name = "mf-life", key = "team" });
        Assert.Empty((await Send(HttpMethod.Get, "registered-models/get?name=mf-life", null)).GetProperty("registered_model").GetProperty("tags").EnumerateArray());

        // A registry-managed model is not loaded or unloaded behind the registry's back.
        using (var unload = await server.Client.PostAsync("/v2/repository/models/mf-life/unload", null))
        {
            Assert.Equal(HttpStatusCode.BadRequest, unload.StatusCode);
            Assert.Contains("managed by the model registry", (await ServerFixture.JsonAsync(unload)).GetProperty("error").GetString());
        }

        // Deleting a version deletes the aliases that name it, as MLflow does ...
        await Send(HttpMethod.Post, "registered-models/alias", new { name = "mf-life", alias = "challenger", version = "1" });
        await Send(HttpMethod.Delete, "model-versions/delete", new { name = "mf-life", version = "1" });
        Assert.Equal(0, (await Send(HttpMethod.Get, "registered-models/get?name=mf-life", null)).GetProperty("registered_model").GetProperty("aliases").GetArrayLength());

        // ... except the version serving traffic now: MedServe's own safety, naming the alias to move.
        await Send(HttpMethod.Post, "registered-models/alias", new { name = "mf-life", alias = "champion", version = "2" });
        using (var serving = await Raw(HttpMethod.Delete, "model-versions/delete", new { name = "mf-life", version = "2" }))
        {
            Assert.Equal(HttpStatusCode.BadRequest, serving.StatusCode);
            Assert.Contains("alias 'champion'", (await ServerFixture.JsonAsync(serving)).GetProperty("message").GetString());
        }

        await Send(HttpMethod.Delete, "registered-models/alias", new { name = "mf-life", alias = "champion" });
        var renamed = await Send(HttpMethod.Post, "registered-models/rename", new { name = "mf-life", new_name = "mf-life-2" });
        Assert.Equal("mf-life-2", renamed.GetProperty("registered_model").GetProperty("name").GetString());
        Assert.Equal("2", renamed.GetProperty("registered_model").GetProperty("latest_versions")[0].GetProperty("version").GetString());

        // A model that serves nothing is deleted with its versions, stage or not.
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
