using System.CommandLine;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text.Json;
using MedServe.Repository;

namespace MedServe.Cli;

/// <summary>
/// <c>medserve models ...</c>: the registry from the command line, through the running server's
/// /v1/registry API, so the CLI and the API are one code path.
/// </summary>
internal static class ModelsCommand
{
    public static Command Create()
    {
        var server = new ServerConnection();
        var command = new Command("models", "Manage registered models on a running server");
        server.AddTo(command);
        command.Add(List(server));
        command.Add(Import(server));
        command.Add(Promote(server));
        command.Add(Rollback(server));
        command.Add(Pull(server));
        return command;
    }

    /// <summary>
    /// Copies a model version out of an MLflow registry (MedServe's own MLflow API included) into this
    /// server's registry: the version's download URI (file://, http(s)://) gives the ONNX file.
    /// </summary>
    private static Command Pull(ServerConnection server)
    {
        var mlflow = new Option<string>("--mlflow") { Description = "The MLflow tracking server URL", Required = true };
        var name = new Argument<string>("name") { Description = "The registered model in MLflow" };
        var version = new Argument<string>("version") { Description = "Its MLflow version" };
        var target = new Option<string>("--as") { Description = "The model name here (default: the same)" };
        var token = new Option<string>("--mlflow-token") { Description = "Bearer token for the MLflow server (default: $MLFLOW_TRACKING_TOKEN)" };
        var command = new Command("pull", "Copy a registered ONNX model version from an MLflow server") { mlflow, name, version, target, token };
        server.SetAction(command, async (parse, client, cancellationToken) =>
        {
            using var source = ServerConnection.Client(parse.GetValue(mlflow)!, "--mlflow", "check the MLflow tracking server's address (--mlflow)");
            if ((parse.GetValue(token) ?? Environment.GetEnvironmentVariable("MLFLOW_TRACKING_TOKEN")) is { Length: > 0 } bearer)
            {
                // MLflow's client sends MLFLOW_TRACKING_TOKEN the same way.
                source.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
            }

            var model = parse.GetValue(name)!;
            var number = parse.GetValue(version)!;
            var query = $"name={Uri.EscapeDataString(model)}&version={Uri.EscapeDataString(number)}";
            using var described = await source.GetAsync($"/api/2.0/mlflow/model-versions/get?{query}", cancellationToken);
            var mlflowVersion = (await ServerConnection.Read(described, cancellationToken)).GetProperty("model_version");
            using var located = await source.GetAsync($"/api/2.0/mlflow/model-versions/get-download-uri?{query}", cancellationToken);
            var uri = new Uri((await ServerConnection.Read(located, cancellationToken)).GetProperty("artifact_uri").GetString()!);
            var bytes = uri.Scheme is "http" or "https"
                ? await source.GetByteArrayAsync(uri, cancellationToken)
                : uri.IsFile
                    ? await File.ReadAllBytesAsync(uri.LocalPath, cancellationToken)
                    : throw new CliFailure(ServerConnection.Unusable, $"cannot download '{uri}': only http(s):// and file:// artifact URIs are supported");

            var here = parse.GetValue(target) ?? model;
            await EnsureModelAsync(client, here, $"pulled from MLflow {parse.GetValue(mlflow)}", cancellationToken);
            var registered = await RegisterVersionAsync(client, here, new ByteArrayContent(bytes), "model.onnx", new
            {
                source = $"mlflow:{parse.GetValue(mlflow)}/{model}/{number}",
                registered_by = Environment.UserName,
                lineage = new { mlflow_model = model, mlflow_version = number, mlflow_run_id = mlflowVersion.TryGetProperty("run_id", out var run) ? run.GetString() : "" },
            }, cancellationToken);
            Console.WriteLine($"{model} {number} from MLflow -> {here} version {registered.GetProperty("version").GetInt64()} ({registered.GetProperty("semantic_version").GetString()})");
            return 0;
        });
        return command;
    }

    private static Command List(ServerConnection server)
    {
        var command = new Command("list", "List registered models");
        server.SetAction(command, async (parse, client, cancellationToken) =>
        {
            using var response = await client.GetAsync("/v1/registry/models", cancellationToken);
            var json = await ServerConnection.Read(response, cancellationToken);
            foreach (var model in json.GetProperty("models").EnumerateArray())
            {
                Console.WriteLine($"{model.GetProperty("name").GetString(),-24} {model.GetProperty("description").GetString()}");
            }

            return 0;
        });
        return command;
    }

    /// <summary>Registers the models of a Triton-style folder: integer version N becomes N.0.0.</summary>
    private static Command Import(ServerConnection server)
    {
        var folder = new Argument<string>("folder") { Description = "A model repository (<model>/<version>/model.onnx)" };
        var command = new Command("import", "Register the models of a Triton-style repository folder") { folder };
        server.SetAction(command, async (parse, client, cancellationToken) =>
        {
            var root = parse.GetValue(folder)!;
            if (!Directory.Exists(root))
            {
                throw new CliFailure(ServerConnection.Unusable, $"no folder '{root}' to import (expected <model>/<version>/model.onnx in it)");
            }

            foreach (var name in RepositoryScanner.ListModels(root))
            {
                var source = RepositoryScanner.ReadModel(root, name);
                await EnsureModelAsync(client, name, $"imported from {Path.GetFullPath(root)}", cancellationToken);
                foreach (var version in source.Versions)
                {
                    var path = source.ModelPath(version);
                    var registered = await RegisterVersionAsync(client, name, new StreamContent(File.OpenRead(path)), Path.GetFileName(path), new
                    {
                        version = string.Create(CultureInfo.InvariantCulture, $"{version}.0.0"),
                        source = new Uri(Path.GetFullPath(path)).ToString(),
                        registered_by = Environment.UserName,
                    }, cancellationToken);
                    Console.WriteLine($"{name} {version}.0.0 -> version {registered.GetProperty("version").GetInt64()} ({registered.GetProperty("artifact").GetString()})");
                }
            }

            return 0;
        });
        return command;
    }

    private static Command Promote(ServerConnection server)
    {
        var model = new Argument<string>("model");
        var version = new Argument<long>("version") { Description = "The integer version" };
        var alias = new Option<string>("--alias") { Description = "The alias to set", DefaultValueFactory = _ => "champion" };
        var reason = new Option<string>("--reason") { Description = "Why (recorded in the alias history)", Required = true };
        var command = new Command("promote", "Point an alias at a version (for champion: a hot swap)") { model, version, alias, reason };
        server.SetAction(command, async (parse, client, cancellationToken) =>
        {
            using var response = await client.PutAsync(
                $"/v1/registry/models/{Uri.EscapeDataString(parse.GetValue(model)!)}/aliases/{Uri.EscapeDataString(parse.GetValue(alias)!)}",
                ServerConnection.Json(new { version = parse.GetValue(version), reason = parse.GetValue(reason), changed_by = Environment.UserName }), cancellationToken);
            return PrintStatus(await ServerConnection.Read(response, cancellationToken));
        });
        return command;
    }

    private static Command Rollback(ServerConnection server)
    {
        var model = new Argument<string>("model");
        var reason = new Option<string>("--reason") { Description = "Why (recorded in the alias history)", Required = true };
        var command = new Command("rollback", "Point the serving alias back at its previous version") { model, reason };
        server.SetAction(command, async (parse, client, cancellationToken) =>
        {
            using var response = await client.PostAsync(
                $"/v1/registry/models/{Uri.EscapeDataString(parse.GetValue(model)!)}/rollback",
                ServerConnection.Json(new { reason = parse.GetValue(reason), changed_by = Environment.UserName }), cancellationToken);
            return PrintStatus(await ServerConnection.Read(response, cancellationToken));
        });
        return command;
    }

    private static int PrintStatus(JsonElement json)
    {
        var serving = json.GetProperty("serving");
        Console.WriteLine($"intended {serving.GetProperty("intended")}, serving {serving.GetProperty("serving")}"
            + (serving.TryGetProperty("reason", out var reason) ? $": {reason.GetString()}" : ""));
        return serving.GetProperty("converged").GetBoolean() ? 0 : 1;
    }

    /// <summary>Creates the registered model; one that exists already (409) is fine.</summary>
    private static async Task EnsureModelAsync(HttpClient client, string name, string description, CancellationToken cancellationToken)
    {
        using var created = await client.PostAsync("/v1/registry/models", ServerConnection.Json(new { name, description }), cancellationToken);
        if (created.StatusCode != System.Net.HttpStatusCode.Conflict)
        {
            await ServerConnection.Read(created, cancellationToken);
        }
    }

    /// <summary>Uploads one version as the registry API takes it: the ONNX file and its metadata, multipart.</summary>
    private static async Task<JsonElement> RegisterVersionAsync(HttpClient client, string name, HttpContent file, string fileName, object metadata, CancellationToken cancellationToken)
    {
        using var form = new MultipartFormDataContent();
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(file, "model", fileName);
        form.Add(new StringContent(JsonSerializer.Serialize(metadata)), "metadata");
        using var response = await client.PostAsync($"/v1/registry/models/{Uri.EscapeDataString(name)}/versions", form, cancellationToken);
        return await ServerConnection.Read(response, cancellationToken);
    }
}
