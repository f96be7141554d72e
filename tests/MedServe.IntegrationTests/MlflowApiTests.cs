using System.Net;
using System.Text.Json;
using MedServe.IntegrationTests.Support;

namespace MedServe.IntegrationTests;

/// <summary>The MLflow Model Registry REST API as MlflowClient calls it: field names, versions as strings, error codes.</summary>
[Collection(ServerCollection.Name)]
public sealed class MlflowApiTests(ServerFixture server)
{
    private static readonly string RiskFile = Path.Combine(AppContext.BaseDirectory, "samples", "risk.onnx");

    [Fact]
    public async Task Create_register_alias_and_read_back_with_mlflows_shapes()
    {
        var created = await Post("registered-models/create", new { name = "mlflow-risk", description = "from mlflow", tags = new[] { new { key = "team", value = "icu" } } });
        var model = created.GetProperty("registered_model");
        Assert.Equal("mlflow-risk", model.GetProperty("name").GetString());
        Assert.Equal("from mlflow", model.GetProperty("description").GetString());
        Assert.True(model.GetProperty("creation_timestamp").GetInt64() > 1_700_000_000_000);
        Assert.Equal("icu", model.GetProperty("tags")[0].GetProperty("value").GetString());

        var version = (await Post("model-versions/create", new { name = "mlflow-risk", source = "file://" + RiskFile, run_id = "run-42" })).GetProperty("model_version");
        Assert.Equal("1", version.GetProperty("version").GetString());
        Assert.Equal("READY", version.GetProperty("status").GetString());
        Assert.Equal("None", version.GetProperty("current_stage").GetString());
        Assert.Equal("run-42", version.GetProperty("run_id").GetString());
        Assert.Equal("file://" + RiskFile, version.GetProperty("source").GetString());
        await Post("model-versions/create", new { name = "mlflow-risk", source = RiskFile });

        await Post("registered-models/alias", new { name = "mlflow-risk", alias = "champion", version = "2" });
        var byAlias = await Get("registered-models/alias?name=mlflow-risk&alias=champion");
        Assert.Equal("2", byAlias.GetProperty("model_version").GetProperty("version").GetString());
        Assert.Equal(["champion"], byAlias.GetProperty("model_version").GetProperty("aliases").EnumerateArray().Select(a => a.GetString()));

        // Setting champion through MLflow is a hot swap: the model now serves version 2.
        var ones = string.Join(",", Enumerable.Repeat("1", 30));
        using (var infer = await server.PostJsonAsync("/v2/models/mlflow-risk/infer", $$"""{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[{{ones}}]}]}"""))
        {
            Assert.Equal("2", (await ServerFixture.JsonAsync(infer)).GetProperty("model_version").GetString());
        }

        var got = (await Get("registered-models/get?name=mlflow-risk")).GetProperty("registered_model");
        Assert.Equal("2", got.GetProperty("latest_versions")[0].GetProperty("version").GetString());
        Assert.Equal("champion", got.GetProperty("aliases")[0].GetProperty("alias").GetString());
        Assert.Equal("2", got.GetProperty("aliases")[0].GetProperty("version").GetString());

        var search = await Get("registered-models/search?filter=" + Uri.EscapeDataString("name LIKE 'mlflow-r%' AND tag.`mlflow.prompt.is_prompt` != 'true'") + "&max_results=10");
        Assert.Equal(["mlflow-risk"], search.GetProperty("registered_models").EnumerateArray().Select(m => m.GetProperty("name").GetString()));
        var versions = await Get("model-versions/search?filter=" + Uri.EscapeDataString("name='mlflow-risk'"));
        // MLflow's default order: newest first.
        Assert.Equal(["2", "1"], versions.GetProperty("model_versions").EnumerateArray().Select(v => v.GetProperty("version").GetString()));
        var latest = await Get("registered-models/get-latest-versions?name=mlflow-risk");
        Assert.Equal("2", latest.GetProperty("model_versions")[0].GetProperty("version").GetString());
        var uri = (await Get("model-versions/get-download-uri?name=mlflow-risk&version=1")).GetProperty("artifact_uri").GetString();
        // An HTTP URL of the registry's artifact route, never a path on the server.
        Assert.Equal(new Uri(server.HttpAddress, "/v1/registry/models/mlflow-risk/versions/1/artifact"), new Uri(uri!));
        Assert.Equal(await File.ReadAllBytesAsync(RiskFile), await server.Client.GetByteArrayAsync(uri));

        await Post("model-versions/set-tag", new { name = "mlflow-risk", version = "1", key = "validated", value = "yes" });
        var one = (await Get("model-versions/get?name=mlflow-risk&version=1")).GetProperty("model_version");
        Assert.Equal("validated", one.GetProperty("tags")[0].GetProperty("key").GetString());

        using var deleteAlias = new HttpRequestMessage(HttpMethod.Delete, "/api/2.0/mlflow/registered-models/alias")
        {
            Content = new StringContent(JsonSerializer.Serialize(new { name = "mlflow-risk", alias = "champion" })),
        };
        using (var deleted = await server.Client.SendAsync(deleteAlias))
        {
            Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        }

        Assert.Empty((await Get("registered-models/get?name=mlflow-risk")).GetProperty("registered_model").GetProperty("aliases").EnumerateArray());
    }

    [Theory]
    [InlineData("registered-models/get?name=ghost", HttpStatusCode.NotFound, "RESOURCE_DOES_NOT_EXIST")]
    [InlineData("model-versions/get?name=ghost&version=1", HttpStatusCode.NotFound, "RESOURCE_DOES_NOT_EXIST")]
    [InlineData("model-versions/get?name=ghost&version=one", HttpStatusCode.BadRequest, "INVALID_PARAMETER_VALUE")]
    [InlineData("registered-models/get", HttpStatusCode.BadRequest, "INVALID_PARAMETER_VALUE")]
    public async Task Errors_use_mlflows_codes(string path, HttpStatusCode status, string code)
    {
        using var response = await server.Client.GetAsync("/api/2.0/mlflow/" + path);
        var json = await ServerFixture.JsonAsync(response);

        Assert.Equal(status, response.StatusCode);
        Assert.Equal(code, json.GetProperty("error_code").GetString());
        Assert.False(string.IsNullOrEmpty(json.GetProperty("message").GetString()));
    }

    [Fact]
    public async Task A_duplicate_model_is_refused_and_an_unreadable_source_is_recorded_but_never_served()
    {
        await Post("registered-models/create", new { name = "mlflow-dup" });
        using var duplicate = await server.PostJsonAsync("/api/2.0/mlflow/registered-models/create", "{\"name\":\"mlflow-dup\"}");
        Assert.Equal("RESOURCE_ALREADY_EXISTS", (await ServerFixture.JsonAsync(duplicate)).GetProperty("error_code").GetString());

        var remote = (await Post("model-versions/create", new { name = "mlflow-dup", source = "s3://bucket/model" })).GetProperty("model_version");
        Assert.Equal("READY", remote.GetProperty("status").GetString());
        Assert.Contains("cannot be read by MedServe", remote.GetProperty("status_message").GetString());
        Assert.Equal("s3://bucket/model", (await Get("model-versions/get-download-uri?name=mlflow-dup&version=1")).GetProperty("artifact_uri").GetString());

        await Post("registered-models/alias", new { name = "mlflow-dup", alias = "champion", version = "1" });
        var status = (await ServerFixture.JsonAsync(await server.Client.GetAsync("/v1/registry/models/mlflow-dup"))).GetProperty("serving");
        Assert.False(status.GetProperty("converged").GetBoolean());
        Assert.Contains("cannot be served", status.GetProperty("reason").GetString());
    }

    [Fact]
    public async Task An_http_source_is_downloaded_only_from_an_allowed_host()
    {
        using var files = new System.Net.HttpListener();
        var port = FreePort();
        files.Prefixes.Add($"http://127.0.0.1:{port}/");
        files.Start();
        var serving = Task.Run(async () =>
        {
            var context = await files.GetContextAsync();
            var bytes = await File.ReadAllBytesAsync(RiskFile);
            context.Response.ContentLength64 = bytes.Length;
            await context.Response.OutputStream.WriteAsync(bytes);
            context.Response.Close();
        });
        await Post("registered-models/create", new { name = "mlflow-http" });

        var allowed = (await Post("model-versions/create", new { name = "mlflow-http", source = $"http://127.0.0.1:{port}/risk.onnx" })).GetProperty("model_version");
        await serving;
        var refused = (await Post("model-versions/create", new { name = "mlflow-http", source = $"http://localhost:{port}/risk.onnx" })).GetProperty("model_version");

        Assert.Equal("", allowed.GetProperty("status_message").GetString());
        var registered = await ServerFixture.JsonAsync(await server.Client.GetAsync("/v1/registry/models/mlflow-http/versions/1"));
        Assert.Equal("1.0.0", registered.GetProperty("semantic_version").GetString());
        Assert.Contains("host 'localhost' is not on the allow-list", refused.GetProperty("status_message").GetString());
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [Fact]
    public async Task Searches_filter_by_tags_run_ids_and_version_numbers_and_page_with_mlflows_tokens()
    {
        foreach (var (name, team) in new[] { ("mf-search-a", "icu"), ("mf-search-b", "ed"), ("mf-search-c", "icu") })
        {
            await Post("registered-models/create", new { name, tags = new[] { new { key = "team", value = team } } });
        }

        await Post("model-versions/create", new { name = "mf-search-a", source = RiskFile, run_id = "run-a1" });
        await Post("model-versions/create", new { name = "mf-search-a", source = RiskFile, run_id = "run-a2", tags = new[] { new { key = "reviewed", value = "yes" } } });
        await Post("model-versions/create", new { name = "mf-search-b", source = RiskFile, run_id = "run-b1" });

        var icu = await Get("registered-models/search?filter=" + Uri.EscapeDataString("name LIKE 'mf-search-%' AND tags.team = 'icu'"));
        Assert.Equal(["mf-search-a", "mf-search-c"], icu.GetProperty("registered_models").EnumerateArray().Select(m => m.GetProperty("name").GetString()));

        var runs = await Get("model-versions/search?filter=" + Uri.EscapeDataString("run_id IN ('run-a2', 'run-b1')"));
        Assert.Equal(["mf-search-b/1", "mf-search-a/2"], runs.GetProperty("model_versions").EnumerateArray().Select(v => $"{v.GetProperty("name").GetString()}/{v.GetProperty("version").GetString()}"));
        var numbered = await Get("model-versions/search?filter=" + Uri.EscapeDataString("name = 'mf-search-a' AND version_number > 1 AND tags.reviewed = 'yes'"));
        Assert.Equal(["2"], numbered.GetProperty("model_versions").EnumerateArray().Select(v => v.GetProperty("version").GetString()));

        // Pages of one, with MLflow's token (base64 of {"offset": N}), until no token comes back.
        var names = new List<string>();
        string? token = null;
        do
        {
            var page = await Get("registered-models/search?max_results=1&filter=" + Uri.EscapeDataString("name LIKE 'mf-search-%'")
                + (token is null ? "" : "&page_token=" + Uri.EscapeDataString(token)));
            names.AddRange(page.GetProperty("registered_models").EnumerateArray().Select(m => m.GetProperty("name").GetString()!));
            token = page.TryGetProperty("next_page_token", out var next) ? next.GetString() : null;
            if (token is not null)
            {
                Assert.StartsWith("{\"offset\": ", System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(token)));
            }
        }
        while (token is not null);
        Assert.Equal(["mf-search-a", "mf-search-b", "mf-search-c"], names);

        foreach (var bad in new[] { "registered-models/search?filter=" + Uri.EscapeDataString("owner = 'x'"), "registered-models/search?max_results=1001", "registered-models/search?page_token=nonsense" })
        {
            using var refused = await server.Client.GetAsync("/api/2.0/mlflow/" + bad);
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Equal("INVALID_PARAMETER_VALUE", (await ServerFixture.JsonAsync(refused)).GetProperty("error_code").GetString());
        }
    }

    [Fact]
    public async Task Aliases_follow_mlflows_rules()
    {
        await Post("registered-models/create", new { name = "mf-alias" });
        await Post("model-versions/create", new { name = "mf-alias", source = RiskFile });

        foreach (var alias in new[] { "latest", "v1", "V12", "has space", "semi;colon" })
        {
            using var refused = await server.PostJsonAsync("/api/2.0/mlflow/registered-models/alias", JsonSerializer.Serialize(new { name = "mf-alias", alias, version = "1" }));
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Equal("INVALID_PARAMETER_VALUE", (await ServerFixture.JsonAsync(refused)).GetProperty("error_code").GetString());
        }

        using (var noVersion = await server.PostJsonAsync("/api/2.0/mlflow/registered-models/alias", JsonSerializer.Serialize(new { name = "mf-alias", alias = "candidate", version = "9" })))
        {
            Assert.Equal(HttpStatusCode.NotFound, noVersion.StatusCode);
            Assert.Equal("RESOURCE_DOES_NOT_EXIST", (await ServerFixture.JsonAsync(noVersion)).GetProperty("error_code").GetString());
        }

        // A missing alias is INVALID_PARAMETER_VALUE (400) in MLflow, not a 404.
        using var missing = await server.Client.GetAsync("/api/2.0/mlflow/registered-models/alias?name=mf-alias&alias=nobody");
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        Assert.Equal("INVALID_PARAMETER_VALUE", (await ServerFixture.JsonAsync(missing)).GetProperty("error_code").GetString());
    }

    private async Task<JsonElement> Post(string path, object body)
    {
        using var response = await server.PostJsonAsync("/api/2.0/mlflow/" + path, JsonSerializer.Serialize(body));
        var json = await ServerFixture.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, json.ToString());
        return json;
    }

    private async Task<JsonElement> Get(string path)
    {
        using var response = await server.Client.GetAsync("/api/2.0/mlflow/" + path);
        var json = await ServerFixture.JsonAsync(response);
        Assert.True(response.IsSuccessStatusCode, json.ToString());
        return json;
    }
}
