using System.Text.Json;
using MedServe.Http.Codec;
using MedServe.Http.V2;
using MedServe.Registry;
using MedServe.Registry.Serving;
using MedServe.Registry.Store;
using MedServe.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;

namespace MedServe.Http.Registry;

/// <summary>
/// The model registry's management API under /v1/registry: models, versions (ONNX upload with
/// metadata), aliases with their history, serving status and rollback. Setting the serving alias
/// is a hot swap. Described by /v1/registry/openapi.json.
/// </summary>
public static class RegistryApi
{
    private const string Prefix = "/v1/registry";

    public static IEndpointRouteBuilder MapRegistryApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup(Prefix);
        group.MapGet("/openapi.json", (HttpContext context) =>
        {
            context.Response.ContentType = "application/json";
            return context.Response.SendFileAsync(Path.Combine(AppContext.BaseDirectory, "openapi", "registry.json"));
        }).RequireAuthorization(Scopes.ModelsRead);
        group.MapPost("/models", CreateModel).RequireAuthorization(Scopes.ModelsWrite);
        group.MapGet("/models", ListModels).RequireAuthorization(Scopes.ModelsRead);
        group.MapGet("/models/{model}", GetModel).RequireAuthorization(Scopes.ModelsRead);
        group.MapPost("/models/{model}/versions", RegisterVersion).RequireAuthorization(Scopes.ModelsWrite);
        group.MapGet("/models/{model}/versions/{version:long}", GetVersion).RequireAuthorization(Scopes.ModelsRead);
        group.MapDelete("/models/{model}/versions/{version:long}", DeleteVersion).RequireAuthorization(Scopes.ModelsWrite);
        group.MapGet("/models/{model}/versions/{version:long}/artifact", DownloadArtifact).RequireAuthorization(Scopes.ModelsRead);
        group.MapPut("/models/{model}/tags/{key}", (HttpContext c, IRegistryStore s, string model, string key) => SetTag(c, s, model, null, key)).RequireAuthorization(Scopes.ModelsWrite);
        group.MapPut("/models/{model}/versions/{version:long}/tags/{key}", (HttpContext c, IRegistryStore s, string model, long version, string key) => SetTag(c, s, model, version, key)).RequireAuthorization(Scopes.ModelsWrite);
        group.MapPut("/models/{model}/aliases/{alias}", SetAlias).RequireAuthorization(Scopes.ModelsWrite);
        group.MapDelete("/models/{model}/aliases/{alias}", DeleteAlias).RequireAuthorization(Scopes.ModelsWrite);
        group.MapGet("/models/{model}/aliases/history", AliasHistory).RequireAuthorization(Scopes.ModelsRead);
        group.MapPost("/models/{model}/rollback", Rollback).RequireAuthorization(Scopes.ModelsWrite);
        group.MapPut("/models/{model}/monitoring", SetMonitoring).RequireAuthorization(Scopes.ModelsWrite);
        group.MapGet("/models/{model}/monitoring", GetMonitoring).RequireAuthorization(Scopes.ModelsRead);
        return routes;
    }

    private static Task CreateModel(HttpContext context, IRegistryStore store) => Guard(context, async () =>
    {
        using var body = await ReadJsonAsync(context);
        var name = Required(body, "name");
        var model = await store.CreateModelAsync(name, Optional(body, "description") ?? "", context.RequestAborted);
        await Write(context, StatusCodes.Status201Created, w => WriteModel(w, model));
    });

    private static Task ListModels(HttpContext context, IRegistryStore store) => Guard(context, async () =>
    {
        // ?q= narrows the list to names or descriptions containing it (case-insensitive).
        var q = context.Request.Query["q"].ToString();
        var models = (await store.ListModelsAsync(context.RequestAborted))
            .Where(m => q.Length == 0 || m.Name.Contains(q, StringComparison.OrdinalIgnoreCase) || m.Description.Contains(q, StringComparison.OrdinalIgnoreCase))
            .ToList();
        await Write(context, StatusCodes.Status200OK, w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("models");
            foreach (var model in models)
            {
                WriteModel(w, model);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        });
    });

    private static Task GetModel(HttpContext context, IRegistryStore store, ServingReconciler reconciler, string model) => Guard(context, async () =>
    {
        var record = await store.GetModelAsync(model, context.RequestAborted) ?? throw new RegistryException(RegistryError.NotFound, $"registered model '{model}' does not exist");
        var versions = await store.ListVersionsAsync(model, context.RequestAborted);
        var aliases = await store.GetAliasesAsync(model, context.RequestAborted);
        var status = reconciler.Status(model);
        await Write(context, StatusCodes.Status200OK, w =>
        {
            w.WriteStartObject();
            w.WritePropertyName("model");
            WriteModel(w, record);
            w.WriteStartArray("versions");
            foreach (var version in versions)
            {
                WriteVersion(w, version);
            }

            w.WriteEndArray();
            w.WriteStartObject("aliases");
            foreach (var (alias, version) in aliases)
            {
                w.WriteNumber(alias, version);
            }

            w.WriteEndObject();
            WriteStatus(w, status);
            w.WriteEndObject();
        });
    });

    /// <summary>
    /// An upload's form: the file part goes to a temporary file past 64 KiB (as by default), the
    /// other parts (the metadata) stay in memory and are held to a few of at most 1 MiB each.
    /// </summary>
    private static readonly FormOptions UploadForm = new()
    {
        ValueCountLimit = 16,
        ValueLengthLimit = 1024 * 1024,
        MemoryBufferThreshold = 64 * 1024,
    };

    /// <summary>multipart/form-data: a "model" file part (the ONNX file) and a "metadata" JSON part.</summary>
    private static Task RegisterVersion(HttpContext context, ModelRegistry registry, string model) => Guard(context, async () =>
    {
        if (!context.Request.HasFormContentType)
        {
            throw new RegistryException(RegistryError.Invalid, "send multipart/form-data with a 'model' file part and a 'metadata' JSON part");
        }

        IFormCollection form;
        try
        {
            form = await context.Request.ReadFormAsync(UploadForm, context.RequestAborted);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or BadHttpRequestException)
        {
            throw new RegistryException(RegistryError.Invalid, $"the multipart body cannot be read: {e.Message}");
        }

        var file = form.Files["model"] ?? throw new RegistryException(RegistryError.Invalid, "the 'model' file part (the ONNX file) is missing");
        using var metadata = ParseJson(form["metadata"].ToString(), "the 'metadata' part");
        var registration = new VersionRegistration(
            model,
            Optional(metadata, "version") ?? "", // none: the smallest step the signature change allows
            Optional(metadata, "source") ?? $"upload:{file.FileName}",
            Optional(metadata, "registered_by") ?? "anonymous",
            Raw(metadata, "model_card"),
            Raw(metadata, "lineage"),
            Raw(metadata, "metrics"));
        await using var stream = file.OpenReadStream();
        var record = await registry.RegisterAsync(registration, stream, context.RequestAborted);
        await Write(context, StatusCodes.Status201Created, w => WriteVersion(w, record));
    });

    private static Task GetVersion(HttpContext context, IRegistryStore store, string model, long version) => Guard(context, async () =>
    {
        var record = await store.GetVersionAsync(model, version, context.RequestAborted)
            ?? throw new RegistryException(RegistryError.NotFound, $"model '{model}' has no version {version}");
        await Write(context, StatusCodes.Status200OK, w => WriteVersion(w, record));
    });

    /// <summary>The version's ONNX file, verified against its digest (what MLflow's get-download-uri points to).</summary>
    private static Task DownloadArtifact(HttpContext context, IRegistryStore store, MedServe.Registry.Artifacts.ArtifactStore artifacts, string model, long version) => Guard(context, async () =>
    {
        var record = await store.GetVersionAsync(model, version, context.RequestAborted)
            ?? throw new RegistryException(RegistryError.NotFound, $"model '{model}' has no version {version}");
        if (!record.Servable)
        {
            throw new RegistryException(RegistryError.NotFound, $"model '{model}' version {version} has no artifact in MedServe (its source was recorded only)");
        }

        var path = await artifacts.OpenVerifiedAsync(record.ArtifactSha256, context.RequestAborted);
        context.Response.ContentType = "application/octet-stream";
        await context.Response.SendFileAsync(path, context.RequestAborted);
    });

    /// <summary>Where a version's artifact is served over HTTP: never a server path.</summary>
    public static string ArtifactUrl(HttpRequest request, string model, long version) =>
        $"{request.Scheme}://{request.Host}{Prefix}/models/{Uri.EscapeDataString(model)}/versions/{version}/artifact";

    private static Task DeleteVersion(HttpContext context, IRegistryStore store, string model, long version) => Guard(context, async () =>
    {
        await store.DeleteVersionAsync(model, version, context.RequestAborted);
        context.Response.StatusCode = StatusCodes.Status204NoContent;
    });

    private static Task SetTag(HttpContext context, IRegistryStore store, string model, long? version, string key) => Guard(context, async () =>
    {
        using var body = await ReadJsonAsync(context);
        await store.SetTagAsync(model, version, key, Required(body, "value"), context.RequestAborted);
        var tags = await store.GetTagsAsync(model, version, context.RequestAborted);
        await Write(context, StatusCodes.Status200OK, w =>
        {
            w.WriteStartObject();
            w.WriteStartObject("tags");
            foreach (var (k, v) in tags)
            {
                w.WriteString(k, v);
            }

            w.WriteEndObject();
            w.WriteEndObject();
        });
    });

    private static Task SetAlias(HttpContext context, IRegistryStore store, ServingReconciler reconciler, string model, string alias) => Guard(context, async () =>
    {
        using var body = await ReadJsonAsync(context);
        if (!body.RootElement.TryGetProperty("version", out var versionElement) || versionElement.ValueKind != JsonValueKind.Number || !versionElement.TryGetInt64(out var version))
        {
            throw new RegistryException(RegistryError.Invalid, "'version' (the integer version) is required");
        }

        await store.SetAliasAsync(model, alias, version, Optional(body, "changed_by") ?? "anonymous", Optional(body, "reason") ?? "", context.RequestAborted);
        var status = await reconciler.ReconcileAsync(model, context.RequestAborted);
        await Write(context, StatusCodes.Status200OK, w => { w.WriteStartObject(); WriteStatus(w, status); w.WriteEndObject(); });
    });

    private static Task DeleteAlias(HttpContext context, IRegistryStore store, ServingReconciler reconciler, string model, string alias) => Guard(context, async () =>
    {
        using var body = await ReadJsonAsync(context);
        await store.SetAliasAsync(model, alias, null, Optional(body, "changed_by") ?? "anonymous", Optional(body, "reason") ?? "", context.RequestAborted);
        var status = await reconciler.ReconcileAsync(model, context.RequestAborted);
        await Write(context, StatusCodes.Status200OK, w => { w.WriteStartObject(); WriteStatus(w, status); w.WriteEndObject(); });
    });

    private static Task AliasHistory(HttpContext context, IRegistryStore store, string model) => Guard(context, async () =>
    {
        var history = await store.GetAliasHistoryAsync(model, context.RequestAborted);
        await Write(context, StatusCodes.Status200OK, w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("changes");
            foreach (var change in history)
            {
                w.WriteStartObject();
                w.WriteString("alias", change.Alias);
                WriteOptional(w, "from", change.From);
                WriteOptional(w, "to", change.To);
                w.WriteString("changed_by", change.ChangedBy);
                w.WriteString("reason", change.Reason);
                w.WriteString("changed_at", change.ChangedAt);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        });
    });

    private static Task Rollback(HttpContext context, ServingReconciler reconciler, string model) => Guard(context, async () =>
    {
        using var body = await ReadJsonAsync(context);
        var status = await reconciler.RollbackAsync(model, Optional(body, "changed_by") ?? "anonymous", Optional(body, "reason") ?? "", context.RequestAborted);
        await Write(context, StatusCodes.Status200OK, w => { w.WriteStartObject(); WriteStatus(w, status); w.WriteEndObject(); });
    });

    /// <summary>A new revision of the model's monitoring spec (config.json's <c>monitoring</c> form, checked as a config is); the served versions take it on the next pass.</summary>
    private static Task SetMonitoring(HttpContext context, IRegistryStore store, ServingReconciler reconciler, string model) => Guard(context, async () =>
    {
        using var body = await ReadJsonAsync(context);
        var text = body.RootElement.GetRawText();
        try
        {
            MedServe.Repository.ModelConfigReader.ParseMonitoringJson(text);
        }
        catch (MedServe.Repository.ModelConfigException e)
        {
            throw new RegistryException(RegistryError.Invalid, e.Message);
        }

        var revision = await store.SetMonitoringAsync(model, text, context.User.Identity is { IsAuthenticated: true, Name: { } name } ? name : "anonymous", context.RequestAborted);
        var status = await reconciler.ReconcileAsync(model, context.RequestAborted);
        await Write(context, StatusCodes.Status200OK, w =>
        {
            w.WriteStartObject();
            WriteRevision(w, revision);
            WriteStatus(w, status);
            w.WriteEndObject();
        });
    });

    private static Task GetMonitoring(HttpContext context, IRegistryStore store, string model) => Guard(context, async () =>
    {
        if (await store.GetModelAsync(model, context.RequestAborted) is null)
        {
            throw new RegistryException(RegistryError.NotFound, $"model '{model}' is not registered");
        }

        var history = await store.GetMonitoringHistoryAsync(model, context.RequestAborted);
        await Write(context, StatusCodes.Status200OK, w =>
        {
            w.WriteStartObject();
            if (history.Count > 0)
            {
                WriteRevision(w, history[^1]);
            }

            w.WriteStartArray("history");
            foreach (var revision in history)
            {
                w.WriteStartObject();
                WriteRevision(w, revision);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        });
    });

    private static void WriteRevision(Utf8JsonWriter w, MonitoringRevision revision)
    {
        w.WriteNumber("revision", revision.Revision);
        w.WritePropertyName("spec");
        using (var spec = JsonDocument.Parse(revision.Spec))
        {
            spec.RootElement.WriteTo(w);
        }

        w.WriteString("changed_by", revision.ChangedBy);
        w.WriteString("changed_at", revision.ChangedAt);
    }

    private static void WriteModel(Utf8JsonWriter w, RegisteredModel model)
    {
        w.WriteStartObject();
        w.WriteString("name", model.Name);
        w.WriteString("description", model.Description);
        w.WriteString("created_at", model.CreatedAt);
        w.WriteString("updated_at", model.UpdatedAt);
        w.WriteEndObject();
    }

    private static void WriteVersion(Utf8JsonWriter w, ModelVersionRecord v)
    {
        w.WriteStartObject();
        w.WriteString("model", v.Model);
        w.WriteNumber("version", v.Version);
        w.WriteString("semantic_version", v.SemanticVersion);
        w.WriteString("artifact", v.Servable ? "sha256:" + v.ArtifactSha256 : "");
        if (!v.Servable)
        {
            w.WriteString("unservable_reason", v.UnservableReason);
        }

        w.WriteString("source", v.Source);
        w.WritePropertyName("signature");
        w.WriteRawValue(v.SignatureJson);
        w.WritePropertyName("model_card");
        w.WriteRawValue(v.ModelCardJson);
        w.WritePropertyName("lineage");
        w.WriteRawValue(v.LineageJson);
        w.WritePropertyName("metrics");
        w.WriteRawValue(v.MetricsJson);
        w.WriteString("registered_by", v.RegisteredBy);
        w.WriteString("created_at", v.CreatedAt);
        w.WriteEndObject();
    }

    private static void WriteStatus(Utf8JsonWriter w, ServingStatus status)
    {
        w.WriteStartObject("serving");
        WriteOptional(w, "intended", status.Intended);
        WriteOptional(w, "serving", status.Serving);
        w.WriteBoolean("converged", status.Converged);
        w.WriteBoolean("reconciling", status.Reconciling);
        if (status.Reason is not null)
        {
            w.WriteString("reason", status.Reason);
        }

        w.WriteEndObject();
    }

    private static void WriteOptional(Utf8JsonWriter w, string name, long? value)
    {
        if (value is { } v)
        {
            w.WriteNumber(name, v);
        }
        else
        {
            w.WriteNull(name);
        }
    }

    private static Task Write(HttpContext context, int status, Action<Utf8JsonWriter> write) => ApiResponses.WriteJsonAsync(context.Response, status, write);

    private static async Task Guard(HttpContext context, Func<Task> action)
    {
        try
        {
            await action();
        }
        catch (RegistryException e)
        {
            await ApiResponses.WriteErrorAsync(context.Response, e.Error switch
            {
                RegistryError.NotFound => StatusCodes.Status404NotFound,
                RegistryError.AlreadyExists => StatusCodes.Status409Conflict,
                _ => StatusCodes.Status400BadRequest,
            }, e.Message);
        }
        catch (InvalidDataException e)
        {
            await ApiResponses.WriteErrorAsync(context.Response, StatusCodes.Status500InternalServerError, e.Message);
        }
        catch (MedServe.Registry.Artifacts.ArtifactObjectStoreException e)
        {
            // The object store is down or refuses: nothing was recorded, and the same request may succeed later.
            await ApiResponses.WriteErrorAsync(context.Response, StatusCodes.Status503ServiceUnavailable, e.Message);
        }
    }

    private static Task<JsonDocument> ReadJsonAsync(HttpContext context) => JsonBody.ReadObjectAsync(context, Invalid);

    private static JsonDocument ParseJson(string text, string what) => JsonBody.ParseObject(text, what, Invalid);

    private static RegistryException Invalid(string message) => new(RegistryError.Invalid, message);

    private static string Required(JsonDocument document, string name) =>
        Optional(document, name) ?? throw new RegistryException(RegistryError.Invalid, $"'{name}' is required");

    private static string? Optional(JsonDocument document, string name) =>
        document.RootElement.TryGetProperty(name, out var value)
            ? value.ValueKind == JsonValueKind.String ? value.GetString() : throw new RegistryException(RegistryError.Invalid, $"'{name}' must be a string")
            : null;

    private static string Raw(JsonDocument document, string name) =>
        document.RootElement.TryGetProperty(name, out var value)
            ? value.ValueKind == JsonValueKind.Object ? value.GetRawText() : throw new RegistryException(RegistryError.Invalid, $"'{name}' must be a JSON object")
            : "{}";
}
