using System.CommandLine;
using MedServe.Cli;
using MedServe.IntegrationTests.Support;

namespace MedServe.IntegrationTests;

/// <summary>`medserve models ...` against a running server: the same API the HTTP tests use.</summary>
[Collection(ServerCollection.Name)]
public sealed class ModelsCliTests(ServerFixture server) : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "medserve-import-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    [Fact]
    public async Task Import_a_triton_folder_then_promote_and_roll_back_from_the_command_line()
    {
        foreach (var version in new[] { "1", "2" })
        {
            Directory.CreateDirectory(Path.Combine(_folder, "cli-risk", version));
            File.Copy(Path.Combine(AppContext.BaseDirectory, "samples", "risk.onnx"), Path.Combine(_folder, "cli-risk", version, "model.onnx"));
        }

        var url = server.Client.BaseAddress!.ToString().TrimEnd('/');
        Assert.Equal(0, await Run("models", "import", _folder, "--server", url, "--api-key", server.AdminKey));
        Assert.Equal(0, await Run("models", "promote", "cli-risk", "1", "--reason", "first", "--server", url, "--api-key", server.AdminKey));
        Assert.Equal(0, await Run("models", "promote", "cli-risk", "2", "--reason", "second", "--server", url, "--api-key", server.AdminKey));
        Assert.Equal(0, await Run("models", "rollback", "cli-risk", "--reason", "bad night", "--server", url, "--api-key", server.AdminKey));

        var model = await ServerFixture.JsonAsync(await server.Client.GetAsync("/v1/registry/models/cli-risk"));
        Assert.Equal(["1.0.0", "2.0.0"], model.GetProperty("versions").EnumerateArray().Select(v => v.GetProperty("semantic_version").GetString()));
        Assert.Equal(1, model.GetProperty("serving").GetProperty("serving").GetInt64());
        Assert.NotEqual(0, await Run("models", "rollback", "no-such-model", "--reason", "x", "--server", url, "--api-key", server.AdminKey));
    }

    [Fact]
    public async Task Pull_copies_a_version_out_of_an_mlflow_registry()
    {
        // MedServe's own MLflow API is the MLflow server here.
        using (var created = await server.PostJsonAsync("/api/2.0/mlflow/registered-models/create", "{\"name\":\"mlflow-src\"}"))
        {
            Assert.True(created.IsSuccessStatusCode);
        }

        var source = System.Text.Json.JsonSerializer.Serialize(new { name = "mlflow-src", source = Path.Combine(AppContext.BaseDirectory, "samples", "risk.onnx"), run_id = "run-7" });
        using (var version = await server.PostJsonAsync("/api/2.0/mlflow/model-versions/create", source))
        {
            Assert.True(version.IsSuccessStatusCode);
        }

        var url = server.Client.BaseAddress!.ToString().TrimEnd('/');
        Assert.Equal(0, await Run("models", "pull", "mlflow-src", "1", "--mlflow", url, "--as", "pulled-risk", "--mlflow-token", server.AdminKey, "--server", url, "--api-key", server.AdminKey));

        var model = await ServerFixture.JsonAsync(await server.Client.GetAsync("/v1/registry/models/pulled-risk"));
        var pulled = model.GetProperty("versions").EnumerateArray().Single();
        Assert.Equal("1.0.0", pulled.GetProperty("semantic_version").GetString());
        Assert.Equal("run-7", pulled.GetProperty("lineage").GetProperty("mlflow_run_id").GetString());
        Assert.Equal("input", pulled.GetProperty("signature").GetProperty("inputs")[0].GetProperty("name").GetString());
        Assert.NotEqual(0, await Run("models", "pull", "mlflow-src", "9", "--mlflow", url, "--mlflow-token", server.AdminKey, "--server", url, "--api-key", server.AdminKey));
    }

    private static Task<int> Run(params string[] args) => new RootCommand { ModelsCommand.Create() }.Parse(args).InvokeAsync();
}
