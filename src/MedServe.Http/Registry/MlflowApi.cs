using System.Globalization;
using System.Text.Json;
using MedServe.Http.Codec;
using MedServe.Http.V2;
using MedServe.Registry;
using MedServe.Repository;
using MedServe.Registry.Serving;
using MedServe.Registry.Sources;
using MedServe.Registry.Store;
using MedServe.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace MedServe.Http.Registry;

/// <summary>
/// The MLflow Model Registry REST API (mlflow/protos/model_registry.proto) over MedServe's registry,
/// so MlflowClient works against MedServe: MLflow's JSON shapes (versions as strings, timestamps in
/// ms, tags as key/value lists) and its error format {error_code, message}. MLflow aliases are
/// MedServe aliases: setting the serving alias is a hot swap. Reads are GET with query parameters.
/// </summary>
public static class MlflowApi
{
    private const string Prefix = "/api/2.0/mlflow";

    public static IEndpointRouteBuilder MapMlflowApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup(Prefix);
        group.MapPost("/registered-models/create", CreateModel).RequireAuthorization(Scopes.ModelsWrite);
        group.MapGet("/registered-models/get", GetModel).RequireAuthorization(Scopes.ModelsRead);
        group.MapGet("/registered-models/search", SearchModels).RequireAuthorization(Scopes.ModelsRead);
        group.MapPost("/registered-models/set-tag", SetModelTag).RequireAuthorization(Scopes.ModelsWrite);
        group.MapMethods("/registered-models/get-latest-versions", ["GET", "POST"], LatestVersions).RequireAuthorization(Scopes.ModelsRead);
        group.MapPost("/registered-models/alias", SetAlias).RequireAuthorization(Scopes.ModelsWrite);
        group.MapDelete("/registered-models/alias", DeleteAlias).RequireAuthorization(Scopes.ModelsWrite);
        group.MapGet("/registered-models/alias", GetByAlias).RequireAuthorization(Scopes.ModelsRead);
        group.MapPost("/model-versions/create", CreateVersion).RequireAuthorization(Scopes.ModelsWrite);
        group.MapGet("/model-versions/get", GetVersion).RequireAuthorization(Scopes.ModelsRead);
        group.MapGet("/model-versions/search", SearchVersions).RequireAuthorization(Scopes.ModelsRead);
        group.MapPost("/model-versions/set-tag", SetVersionTag).RequireAuthorization(Scopes.ModelsWrite);
        group.MapGet("/model-versions/get-download-uri", DownloadUri).RequireAuthorization(Scopes.ModelsRead);
        group.MapPatch("/registered-models/update", UpdateModel).RequireAuthorization(Scopes.ModelsWrite);
        group.MapPost("/registered-models/rename", RenameModel).RequireAuthorization(Scopes.ModelsWrite);
        group.MapDelete("/registered-models/delete", DeleteModel).RequireAuthorization(Scopes.ModelsWrite);
        group.MapDelete("/registered-models/delete-tag", DeleteModelTag).RequireAuthorization(Scopes.ModelsWrite);
        group.MapPatch("/model-versions/update", UpdateVersion).RequireAuthorization(Scopes.ModelsWrite);
        group.MapDelete("/model-versions/delete", DeleteVersion).RequireAuthorization(Scopes.ModelsWrite);
        group.MapPost("/model-versions/transition-stage", TransitionStage).RequireAuthorization(Scopes.ModelsWrite);
        group.MapDelete("/model-versions/delete-tag", DeleteVersionTag).RequireAuthorization(Scopes.ModelsWrite);
        return routes;
    }

    private static Task CreateModel(HttpContext context, IRegistryStore store) => Guard(context, async () =>
    {
        using var body = await Body(context);
        var name = Required(body, "name");
        await store.CreateModelAsync(name, Optional(body, "description") ?? "", context.RequestAborted);
        foreach (var (key, value) in Tags(body))
        {
            await store.SetTagAsync(name, null, key, value, context.RequestAborted);
        }

        await Respond(context, "registered_model", await ModelJson(store, name, context.RequestAborted));
    });

    private static Task GetModel(HttpContext context, IRegistryStore store) => Guard(context, async () =>
        await Respond(context, "registered_model", await ModelJson(store, Query(context, "name"), context.RequestAborted)));

    /// <summary>MLflow's filter (<see cref="MlflowSearch"/>), ordered by name (or last update), paged by offset tokens.</summary>
    private static Task SearchModels(HttpContext context, IRegistryStore store) => Guard(context, async () =>
    {
        var query = context.Request.Query;
        var matches = MlflowSearch.Parse(query["filter"], versions: false);
        var maxResults = MlflowSearch.MaxResults(query["max_results"], 100, 1000);
        var offset = MlflowSearch.Offset(query["page_token"]);
        var models = new List<RegisteredModel>();
        foreach (var model in await store.ListModelsAsync(context.RequestAborted))
        {
            var tags = await store.GetTagsAsync(model.Name, null, context.RequestAborted);
            if (matches(new MlflowSearch.Candidate(model.Name, "", "", 0, tags)))
            {
                models.Add(model);
            }
        }

        IEnumerable<RegisteredModel> ordered = models.OrderBy(m => m.Name, StringComparer.Ordinal);
        foreach (var order in query["order_by"].Reverse())
        {
            var (key, descending) = OrderKey(order);
            ordered = key switch
            {
                "name" => descending ? ordered.OrderByDescending(m => m.Name, StringComparer.Ordinal) : ordered.OrderBy(m => m.Name, StringComparer.Ordinal),
                "timestamp" or "last_updated_timestamp" => descending ? ordered.OrderByDescending(m => m.UpdatedAt) : ordered.OrderBy(m => m.UpdatedAt),
                _ => throw new RegistryException(RegistryError.Invalid, $"Invalid order_by clause '{order}': order by name, timestamp or last_updated_timestamp, ASC or DESC"),
            };
        }

        var sorted = ordered.ToList();
        var page = new List<object>();
        foreach (var model in sorted.Skip(offset).Take(maxResults))
        {
            page.Add(await ModelJson(store, model.Name, context.RequestAborted));
        }

        var next = offset + page.Count < sorted.Count ? MlflowSearch.Token(offset + page.Count) : null;
        await Write(context, next is null ? new { registered_models = page } : new { registered_models = page, next_page_token = next });
    });

    private static (string Key, bool Descending) OrderKey(string? order)
    {
        var parts = (order ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var descending = parts.Length == 2 && parts[1].Equals("DESC", StringComparison.OrdinalIgnoreCase);
        if (parts.Length is 0 or > 2 || (parts.Length == 2 && !descending && !parts[1].Equals("ASC", StringComparison.OrdinalIgnoreCase)))
        {
            return ("", false);
        }

        return (parts[0].ToLowerInvariant(), descending);
    }

    private static Task SetModelTag(HttpContext context, IRegistryStore store) => Guard(context, async () =>
    {
        using var body = await Body(context);
        await store.SetTagAsync(Required(body, "name"), null, Required(body, "key"), Required(body, "value"), context.RequestAborted);
        await Write(context, new { });
    });

    /// <summary>The highest version in each stage asked for (all four when none is named), as MLflow's SQL store answers.</summary>
    private static Task LatestVersions(HttpContext context, IRegistryStore store) => Guard(context, async () =>
    {
        string name;
        List<string> stages;
        if (HttpMethods.IsGet(context.Request.Method))
        {
            name = Query(context, "name");
            stages = [.. context.Request.Query["stages"].Select(s => s ?? "")];
        }
        else
        {
            using var body = await Body(context);
            name = Required(body, "name");
            stages = body.RootElement.TryGetProperty("stages", out var list) && list.ValueKind == JsonValueKind.Array
                ? [.. list.EnumerateArray().Select(s => s.GetString() ?? "")]
                : [];
        }

        var wanted = stages.Count == 0 ? [.. Stages] : stages.Select(CanonicalStage).Distinct().ToList();
        await RequireModel(store, name, context.RequestAborted);
        var versions = await store.ListVersionsAsync(name, context.RequestAborted);
        var latest = new List<object>();
        foreach (var stage in wanted)
        {
            if (versions.LastOrDefault(v => v.Stage == stage) is { } highest)
            {
                latest.Add(await VersionJson(store, highest, context.RequestAborted));
            }
        }

        await Write(context, new { model_versions = latest });
    });

    private static Task SetAlias(HttpContext context, IRegistryStore store, ServingReconciler reconciler) => Guard(context, async () =>
    {
        using var body = await Body(context);
        var name = Required(body, "name");
        var version = ParseVersion(Required(body, "version"));
        var alias = Required(body, "alias");
        ValidateAlias(alias);
        await RequireVersion(store, name, version, context.RequestAborted);
        await store.SetAliasAsync(name, alias, version, "mlflow", "set through the MLflow API", context.RequestAborted);
        await reconciler.ReconcileAsync(name, context.RequestAborted);
        await Write(context, new { });
    });

    private static Task DeleteAlias(HttpContext context, IRegistryStore store, ServingReconciler reconciler) => Guard(context, async () =>
    {
        // MLflow's client sends the alias delete with a JSON body; query parameters are accepted too.
        using var body = await Body(context);
        var name = Optional(body, "name") ?? Query(context, "name");
        var alias = Optional(body, "alias") ?? Query(context, "alias");
        await store.SetAliasAsync(name, alias, null, "mlflow", "deleted through the MLflow API", context.RequestAborted);
        await reconciler.ReconcileAsync(name, context.RequestAborted);
        await Write(context, new { });
    });

    private static Task GetByAlias(HttpContext context, IRegistryStore store) => Guard(context, async () =>
    {
        var name = Query(context, "name");
        var alias = Query(context, "alias");
        var aliases = await store.GetAliasesAsync(name, context.RequestAborted);
        if (!aliases.TryGetValue(alias, out var version))
        {
            // MLflow answers a missing alias with INVALID_PARAMETER_VALUE (400), not a 404.
            throw new RegistryException(RegistryError.Invalid, $"Registered model alias {alias} not found.");
        }

        await Respond(context, "model_version", await VersionJson(store, await RequireVersion(store, name, version, context.RequestAborted), context.RequestAborted));
    });

    /// <summary>
    /// A source MedServe can read (a local path or file:// URI to an ONNX file, or a folder holding
    /// one) is copied into the artifact store and registered; its semantic version is the smallest
    /// step its signature change allows.
    /// </summary>
    private static Task CreateVersion(HttpContext context, ModelRegistry registry, SourceFetcher sources) => Guard(context, async () =>
    {
        using var body = await Body(context);
        var name = Required(body, "name");
        var source = Required(body, "source");
        var registration = new VersionRegistration(name, "", source, "mlflow",
            LineageJson: JsonSerializer.Serialize(new { run_id = Optional(body, "run_id") ?? "", run_link = Optional(body, "run_link") ?? "" }));
        var (content, reason) = await sources.OpenAsync(source, context.RequestAborted);
        ModelVersionRecord record;
        if (content is null)
        {
            // Like MLflow, any source is accepted and recorded; this one stays unservable, saying why.
            await RequireModel(registry.Store, name, context.RequestAborted);
            record = await registry.RecordUnservableAsync(registration, reason!, context.RequestAborted);
        }
        else
        {
            await using (content)
            {
                record = await registry.RegisterAsync(registration, content, context.RequestAborted);
            }
        }

        foreach (var (key, value) in Tags(body))
        {
            await registry.Store.SetTagAsync(name, record.Version, key, value, context.RequestAborted);
        }

        // MLflow stores the description given at creation.
        if (Optional(body, "description") is { Length: > 0 } description)
        {
            await registry.Store.UpdateVersionAsync(name, record.Version, description, null, context.RequestAborted);
            record = await RequireVersion(registry.Store, name, record.Version, context.RequestAborted);
        }

        await Respond(context, "model_version", await VersionJson(registry.Store, record, context.RequestAborted));
    });

    private static Task GetVersion(HttpContext context, IRegistryStore store) => Guard(context, async () =>
    {
        var record = await RequireVersion(store, Query(context, "name"), ParseVersion(Query(context, "version")), context.RequestAborted);
        await Respond(context, "model_version", await VersionJson(store, record, context.RequestAborted));
    });

    /// <summary>MLflow's filter over versions; newest update first, as MLflow's default order; paged by offset tokens.</summary>
    private static Task SearchVersions(HttpContext context, IRegistryStore store) => Guard(context, async () =>
    {
        var query = context.Request.Query;
        var matches = MlflowSearch.Parse(query["filter"], versions: true);
        var maxResults = MlflowSearch.MaxResults(query["max_results"], 10_000, 200_000);
        var offset = MlflowSearch.Offset(query["page_token"]);
        var found = new List<ModelVersionRecord>();
        foreach (var model in await store.ListModelsAsync(context.RequestAborted))
        {
            foreach (var version in await store.ListVersionsAsync(model.Name, context.RequestAborted))
            {
                var tags = await store.GetTagsAsync(model.Name, version.Version, context.RequestAborted);
                if (matches(new MlflowSearch.Candidate(model.Name, RunId(version), version.Source, version.Version, tags)))
                {
                    found.Add(version);
                }
            }
        }

        var sorted = found.OrderByDescending(v => v.CreatedAt).ThenBy(v => v.Model, StringComparer.Ordinal).ThenByDescending(v => v.Version).ToList();
        var results = new List<object>();
        foreach (var version in sorted.Skip(offset).Take(maxResults))
        {
            results.Add(await VersionJson(store, version, context.RequestAborted));
        }

        var next = offset + results.Count < sorted.Count ? MlflowSearch.Token(offset + results.Count) : null;
        await Write(context, next is null ? new { model_versions = results } : new { model_versions = results, next_page_token = next });
    });

    private static string RunId(ModelVersionRecord version)
    {
        using var lineage = JsonDocument.Parse(version.LineageJson);
        return lineage.RootElement.TryGetProperty("run_id", out var run) && run.ValueKind == JsonValueKind.String ? run.GetString() ?? "" : "";
    }

    private static Task SetVersionTag(HttpContext context, IRegistryStore store) => Guard(context, async () =>
    {
        using var body = await Body(context);
        var name = Required(body, "name");
        var version = ParseVersion(Required(body, "version"));
        await RequireVersion(store, name, version, context.RequestAborted);
        await store.SetTagAsync(name, version, Required(body, "key"), Required(body, "value"), context.RequestAborted);
        await Write(context, new { });
    });

    private static Task DownloadUri(HttpContext context, IRegistryStore store) => Guard(context, async () =>
    {
        var record = await RequireVersion(store, Query(context, "name"), ParseVersion(Query(context, "version")), context.RequestAborted);
        await Write(context, new { artifact_uri = record.Servable ? RegistryApi.ArtifactUrl(context.Request, record.Model, record.Version) : record.Source });
    });

    private static Task UpdateModel(HttpContext context, IRegistryStore store) => Guard(context, async () =>
    {
        using var body = await Body(context);
        var name = Required(body, "name");
        await store.UpdateModelAsync(name, Optional(body, "description") ?? "", context.RequestAborted);
        await Respond(context, "registered_model", await ModelJson(store, name, context.RequestAborted));
    });

    private static Task RenameModel(HttpContext context, IRegistryStore store) => Guard(context, async () =>
    {
        using var body = await Body(context);
        var newName = Required(body, "new_name");
        await store.RenameModelAsync(Required(body, "name"), newName, context.RequestAborted);
        await Respond(context, "registered_model", await ModelJson(store, newName, context.RequestAborted));
    });

    /// <summary>As MLflow: the model goes with its versions and aliases; refused only while one of its versions serves traffic.</summary>
    private static Task DeleteModel(HttpContext context, IRegistryStore store, ServingReconciler reconciler, MedServe.Lifecycle.ModelManager models) => Guard(context, async () =>
    {
        using var body = await Body(context);
        var name = Required(body, "name");
        await RequireModel(store, name, context.RequestAborted);
        var aliases = await store.GetAliasesAsync(name, context.RequestAborted);
        RefuseServing(name, null, aliases, reconciler, models);
        foreach (var alias in aliases.Keys)
        {
            await store.SetAliasAsync(name, alias, null, "mlflow", "model deleted through the MLflow API", context.RequestAborted);
        }

        await store.DeleteModelAsync(name, context.RequestAborted);
        await reconciler.ReconcileAsync(name, context.RequestAborted);
        await Write(context, new { });
    });

    private static Task DeleteModelTag(HttpContext context, IRegistryStore store) => Guard(context, async () =>
    {
        using var body = await Body(context);
        await store.DeleteTagAsync(Required(body, "name"), null, Required(body, "key"), context.RequestAborted);
        await Write(context, new { });
    });

    private static Task UpdateVersion(HttpContext context, IRegistryStore store) => Guard(context, async () =>
    {
        using var body = await Body(context);
        var name = Required(body, "name");
        var version = ParseVersion(Required(body, "version"));
        await store.UpdateVersionAsync(name, version, Optional(body, "description") ?? "", null, context.RequestAborted);
        await Respond(context, "model_version", await VersionJson(store, await RequireVersion(store, name, version, context.RequestAborted), context.RequestAborted));
    });

    /// <summary>
    /// As MLflow: the version goes, with the aliases that name it. MedServe's own safety on top: the
    /// version serving unversioned traffic right now is refused, naming the alias to move first.
    /// </summary>
    private static Task DeleteVersion(HttpContext context, IRegistryStore store, ServingReconciler reconciler, MedServe.Lifecycle.ModelManager models) => Guard(context, async () =>
    {
        using var body = await Body(context);
        var name = Required(body, "name");
        var version = ParseVersion(Required(body, "version"));
        await RequireVersion(store, name, version, context.RequestAborted);
        var aliases = await store.GetAliasesAsync(name, context.RequestAborted);
        RefuseServing(name, version, aliases, reconciler, models);
        foreach (var (alias, _) in aliases.Where(a => a.Value == version))
        {
            await store.SetAliasAsync(name, alias, null, "mlflow", $"version {version} deleted through the MLflow API", context.RequestAborted);
        }

        await store.DeleteVersionAsync(name, version, context.RequestAborted);
        await reconciler.ReconcileAsync(name, context.RequestAborted);
        await Write(context, new { });
    });

    /// <summary>MedServe's own refusal (MLflow has no serving): the version answering unversioned traffic stays until its alias moves.</summary>
    private static void RefuseServing(string name, long? version, IReadOnlyDictionary<string, long> aliases, ServingReconciler reconciler, MedServe.Lifecycle.ModelManager models)
    {
        if (aliases.TryGetValue(reconciler.ServingAlias, out var serving) && (version is null || serving == version) && models.ServingVersion(name) == serving)
        {
            throw new RegistryException(RegistryError.Invalid,
                $"model '{name}' version {serving} is serving traffic now (alias '{reconciler.ServingAlias}'); move or delete that alias first (MedServe keeps a serving version from being deleted)");
        }
    }

    private static Task DeleteVersionTag(HttpContext context, IRegistryStore store) => Guard(context, async () =>
    {
        using var body = await Body(context);
        await store.DeleteTagAsync(Required(body, "name"), ParseVersion(Required(body, "version")), Required(body, "key"), context.RequestAborted);
        await Write(context, new { });
    });

    private static readonly string[] Stages = ["None", "Staging", "Production", "Archived"];

    /// <summary>MLflow's stage names, matched without regard to case; anything else is refused as MLflow refuses it.</summary>
    private static string CanonicalStage(string stage) =>
        Stages.FirstOrDefault(s => s.Equals(stage, StringComparison.OrdinalIgnoreCase))
        ?? throw new RegistryException(RegistryError.Invalid, $"Invalid Model Version stage: {stage}. Value must be one of None, Staging, Production, Archived.");

    /// <summary>
    /// A stage is a stage, as in MLflow: it is recorded on the version and never shows as an alias.
    /// Its serving meaning is MedServe's: versions in Staging or Production are kept loaded (for
    /// requests that name them); what answers unversioned requests is the serving alias.
    /// </summary>
    private static Task TransitionStage(HttpContext context, IRegistryStore store, ServingReconciler reconciler) => Guard(context, async () =>
    {
        using var body = await Body(context);
        var name = Required(body, "name");
        var version = ParseVersion(Required(body, "version"));
        var stage = CanonicalStage(Required(body, "stage"));
        var archiveOthers = body.RootElement.TryGetProperty("archive_existing_versions", out var archive)
            && (archive.ValueKind == JsonValueKind.True || (archive.ValueKind == JsonValueKind.String && archive.GetString() == "true"));
        if (archiveOthers && stage is not ("Staging" or "Production"))
        {
            throw new RegistryException(RegistryError.Invalid, $"Model version transition cannot archive existing model versions because '{stage}' is not an Active stage. Valid stages are Staging and Production.");
        }

        await RequireVersion(store, name, version, context.RequestAborted);
        if (archiveOthers)
        {
            foreach (var other in await store.ListVersionsAsync(name, context.RequestAborted))
            {
                if (other.Version != version && other.Stage == stage)
                {
                    await store.UpdateVersionAsync(name, other.Version, null, "Archived", context.RequestAborted);
                }
            }
        }

        await store.UpdateVersionAsync(name, version, null, stage, context.RequestAborted);
        await reconciler.ReconcileAsync(name, context.RequestAborted);
        await Respond(context, "model_version", await VersionJson(store, await RequireVersion(store, name, version, context.RequestAborted), context.RequestAborted));
    });

    private static async Task<object> ModelJson(IRegistryStore store, string name, CancellationToken cancellationToken)
    {
        var model = await RequireModel(store, name, cancellationToken);
        var versions = await store.ListVersionsAsync(name, cancellationToken);
        var aliases = await store.GetAliasesAsync(name, cancellationToken);
        var tags = await store.GetTagsAsync(name, null, cancellationToken);
        return new
        {
            name = model.Name,
            creation_timestamp = model.CreatedAt.ToUnixTimeMilliseconds(),
            last_updated_timestamp = model.UpdatedAt.ToUnixTimeMilliseconds(),
            description = model.Description,
            latest_versions = versions.Count == 0 ? [] : new[] { await VersionJson(store, versions[^1], cancellationToken) },
            tags = tags.Select(t => new { key = t.Key, value = t.Value }),
            aliases = aliases.Select(a => new { alias = a.Key, version = a.Value.ToString(CultureInfo.InvariantCulture) }),
        };
    }

    private static async Task<object> VersionJson(IRegistryStore store, ModelVersionRecord v, CancellationToken cancellationToken)
    {
        var aliases = await store.GetAliasesAsync(v.Model, cancellationToken);
        var tags = await store.GetTagsAsync(v.Model, v.Version, cancellationToken);
        using var lineage = JsonDocument.Parse(v.LineageJson);
        return new
        {
            name = v.Model,
            version = v.Version.ToString(CultureInfo.InvariantCulture),
            creation_timestamp = v.CreatedAt.ToUnixTimeMilliseconds(),
            last_updated_timestamp = v.CreatedAt.ToUnixTimeMilliseconds(),
            current_stage = v.Stage,
            description = v.Description,
            source = v.Source,
            run_id = lineage.RootElement.TryGetProperty("run_id", out var run) && run.ValueKind == JsonValueKind.String ? run.GetString() : "",
            run_link = lineage.RootElement.TryGetProperty("run_link", out var link) && link.ValueKind == JsonValueKind.String ? link.GetString() : "",
            status = "READY",
            status_message = v.Servable ? "" : "not servable by MedServe: " + v.UnservableReason,
            tags = tags.Select(t => new { key = t.Key, value = t.Value }),
            aliases = aliases.Where(a => a.Value == v.Version).Select(a => a.Key),
        };
    }

    /// <summary>MLflow's alias rule: word characters and '-', at most 255; "latest" and v&lt;digits&gt; are reserved (they name versions).</summary>
    private static void ValidateAlias(string alias)
    {
        if (alias.Length is 0 or > 255 || !System.Text.RegularExpressions.Regex.IsMatch(alias, @"^[\w\-]*$"))
        {
            throw new RegistryException(RegistryError.Invalid, $"Invalid alias name: '{ModelNames.Quote(alias)}'. Names may only contain alphanumerics, underscores (_), and dashes (-), at most 255 characters.");
        }

        if (alias.Equals("latest", StringComparison.OrdinalIgnoreCase) || System.Text.RegularExpressions.Regex.IsMatch(alias, @"^[vV]\d+$"))
        {
            throw new RegistryException(RegistryError.Invalid, $"Invalid alias name: '{alias}'. Aliases 'latest' and those of the form v<number> are reserved.");
        }
    }

    private static async Task<RegisteredModel> RequireModel(IRegistryStore store, string name, CancellationToken cancellationToken) =>
        await store.GetModelAsync(name, cancellationToken) ?? throw new RegistryException(RegistryError.NotFound, $"Registered Model with name={name} not found");

    private static async Task<ModelVersionRecord> RequireVersion(IRegistryStore store, string name, long version, CancellationToken cancellationToken)
    {
        await RequireModel(store, name, cancellationToken);
        return await store.GetVersionAsync(name, version, cancellationToken)
            ?? throw new RegistryException(RegistryError.NotFound, $"Model Version (name={name}, version={version}) not found");
    }

    private static long ParseVersion(string text) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var version) && version > 0
            ? version
            : throw new RegistryException(RegistryError.Invalid, $"Parameter 'version' must be a positive integer, not '{text}'");

    private static IEnumerable<(string Key, string Value)> Tags(JsonDocument body)
    {
        if (!body.RootElement.TryGetProperty("tags", out var tags) || tags.ValueKind != JsonValueKind.Array)
        {
            yield break;
        }

        foreach (var tag in tags.EnumerateArray())
        {
            yield return (tag.GetProperty("key").GetString() ?? "", tag.TryGetProperty("value", out var v) ? v.GetString() ?? "" : "");
        }
    }

    private static string Query(HttpContext context, string name)
    {
        var value = context.Request.Query[name].ToString();
        return value.Length > 0 ? value : throw new RegistryException(RegistryError.Invalid, $"Missing value for required parameter '{name}'.");
    }

    private static Task<JsonDocument> Body(HttpContext context) =>
        JsonBody.ReadObjectAsync(context, message => new RegistryException(RegistryError.Invalid, message));

    private static string Required(JsonDocument body, string name) =>
        Optional(body, name) ?? throw new RegistryException(RegistryError.Invalid, $"Missing value for required parameter '{name}'.");

    private static string? Optional(JsonDocument body, string name) =>
        body.RootElement.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null
            ? value.ValueKind == JsonValueKind.String ? value.GetString() : value.GetRawText()
            : null;

    private static Task Respond(HttpContext context, string field, object value) =>
        Write(context, new Dictionary<string, object> { [field] = value });

    private static async Task Write(HttpContext context, object value)
    {
        context.Response.ContentType = "application/json";
        await JsonSerializer.SerializeAsync(context.Response.Body, value, value.GetType(), cancellationToken: context.RequestAborted);
    }

    /// <summary>MLflow's error shape: {error_code, message}, 404 for a missing resource, 400 otherwise.</summary>
    private static async Task Guard(HttpContext context, Func<Task> action)
    {
        try
        {
            await action();
        }
        catch (RegistryException e)
        {
            var (status, code) = e.Error switch
            {
                RegistryError.NotFound => (StatusCodes.Status404NotFound, "RESOURCE_DOES_NOT_EXIST"),
                RegistryError.AlreadyExists => (StatusCodes.Status400BadRequest, "RESOURCE_ALREADY_EXISTS"),
                _ => (StatusCodes.Status400BadRequest, "INVALID_PARAMETER_VALUE"),
            };
            await Error(context, status, code, e.Message);
        }
        catch (MedServe.Registry.Artifacts.ArtifactObjectStoreException e)
        {
            // The artifact object store is down or refuses: nothing was recorded; MLflow clients retry this code.
            await Error(context, StatusCodes.Status503ServiceUnavailable, "TEMPORARILY_UNAVAILABLE", e.Message);
        }
    }

    private static Task Error(HttpContext context, int status, string code, string message) =>
        ApiResponses.WriteJsonAsync(context.Response, status, w =>
        {
            w.WriteStartObject();
            w.WriteString("error_code", code);
            w.WriteString("message", message);
            w.WriteEndObject();
        });
}
