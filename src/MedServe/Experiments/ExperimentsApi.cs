using System.Text.Json;
using MedServe.Http.V2;
using MedServe.Security;

namespace MedServe.Experiments;

/// <summary>POST /v1/experiments; GET /v1/experiments[/{name}[/report]]; POST /v1/experiments/{name}/pause|resume|stop|promote.</summary>
public static class ExperimentsApi
{
    public static IEndpointRouteBuilder MapExperimentsApi(this IEndpointRouteBuilder routes)
    {
        routes.MapPost("/v1/experiments", Create).RequireAuthorization(Scopes.ModelsWrite).WithMetadata(new AuditedEndpoint());
        routes.MapGet("/v1/experiments", List).RequireAuthorization(Scopes.ModelsRead);
        routes.MapGet("/v1/experiments/{name}", Get).RequireAuthorization(Scopes.ModelsRead);
        routes.MapGet("/v1/experiments/{name}/report", Report).RequireAuthorization(Scopes.ModelsRead).WithMetadata(new AuditedEndpoint());
        routes.MapPost("/v1/experiments/{name}/{action}", Act).RequireAuthorization(Scopes.ModelsWrite).WithMetadata(new AuditedEndpoint());
        return routes;
    }

    private static Task Create(HttpContext context, ExperimentService experiments, ExperimentRouter router) => Guard(context, async () =>
    {
        using var body = await ReadAsync(context).ConfigureAwait(false);
        var created = await experiments.CreateAsync(ExperimentSpec.Parse(body.RootElement), AuditTrail.Actor(context.User), context.RequestAborted).ConfigureAwait(false);
        await ApiResponses.WriteJsonAsync(context.Response, StatusCodes.Status201Created, w => Write(w, created, router, null)).ConfigureAwait(false);
    });

    private static Task List(HttpContext context, ExperimentService experiments, ExperimentRouter router) =>
        ApiResponses.WriteJsonAsync(context.Response, StatusCodes.Status200OK, w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("experiments");
            foreach (var e in experiments.All)
            {
                Write(w, e, router, null);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        });

    private static Task Get(HttpContext context, string name, ExperimentService experiments, ExperimentRouter router) => Guard(context, async () =>
    {
        var e = experiments.All.FirstOrDefault(x => x.Spec.Name == name) ?? throw new ExperimentException($"no experiment is named '{name}'", StatusCodes.Status404NotFound);
        var history = await experiments.HistoryAsync(name, context.RequestAborted).ConfigureAwait(false);
        await ApiResponses.WriteJsonAsync(context.Response, StatusCodes.Status200OK, w => Write(w, e, router, history)).ConfigureAwait(false);
    });

    private static Task Report(HttpContext context, string name, ExperimentReport report) => Guard(context, async () =>
    {
        var write = await report.BuildAsync(name, context.RequestAborted).ConfigureAwait(false);
        await ApiResponses.WriteJsonAsync(context.Response, StatusCodes.Status200OK, write).ConfigureAwait(false);
    });

    private static Task Act(HttpContext context, string name, string action, ExperimentService experiments, ExperimentRouter router) => Guard(context, async () =>
    {
        string? arm = null, reason = null;
        if (context.Request.ContentLength is > 0)
        {
            using var body = await ReadAsync(context).ConfigureAwait(false);
            arm = body.RootElement.TryGetProperty("arm", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString() : null;
            reason = body.RootElement.TryGetProperty("reason", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString() : null;
        }

        var changed = await experiments.ActAsync(name, action, arm, AuditTrail.Actor(context.User), reason is { Length: <= 500 } ? reason : "", context.RequestAborted).ConfigureAwait(false);
        await ApiResponses.WriteJsonAsync(context.Response, StatusCodes.Status200OK, w => Write(w, changed, router, null)).ConfigureAwait(false);
    });

    private static void Write(Utf8JsonWriter w, StoredExperiment e, ExperimentRouter router, IReadOnlyList<ExperimentEvent>? history)
    {
        w.WriteStartObject();
        e.Spec.Write(w);
        w.WriteStartObject("state");
        w.WriteString("status", e.State.Status);
        w.WriteNumber("step", e.State.Step);
        w.WriteString("step_started_at", e.State.StepStartedAt);
        w.WriteString("reason", e.State.Reason);
        w.WriteString("created_at", e.State.CreatedAt);
        w.WriteString("created_by", e.State.CreatedBy);
        w.WriteEndObject();
        if (router.Snapshot.TryGetValue(e.Spec.Model, out var live) && live.Stored.Spec.Name == e.Spec.Name)
        {
            w.WriteStartArray("routing");
            foreach (var arm in live.Arms)
            {
                var statistics = live.Statistics.GetValueOrDefault(arm.Name);
                w.WriteStartObject();
                w.WriteString("arm", arm.Name);
                w.WriteNumber("version", arm.Version);
                w.WriteNumber("weight", arm.Weight);
                w.WriteNumber("requests", statistics?.Requests ?? 0);
                w.WriteNumber("errors", statistics?.Failures ?? 0);
                w.WriteNumber("invalid_outputs", statistics?.InvalidOutputs ?? 0);
                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        if (history is not null)
        {
            w.WriteStartArray("history");
            foreach (var h in history)
            {
                w.WriteStartObject();
                w.WriteString("at", h.At);
                w.WriteString("event", h.Event);
                w.WriteString("detail", h.Detail);
                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        w.WriteEndObject();
    }

    private static async Task<JsonDocument> ReadAsync(HttpContext context)
    {
        using var reader = new StreamReader(context.Request.Body);
        try
        {
            return JsonDocument.Parse(await reader.ReadToEndAsync(context.RequestAborted).ConfigureAwait(false));
        }
        catch (JsonException e)
        {
            throw new ExperimentException($"the body is not JSON: {e.Message}");
        }
    }

    private static async Task Guard(HttpContext context, Func<Task> action)
    {
        try
        {
            await action().ConfigureAwait(false);
        }
        catch (ExperimentException e)
        {
            await ApiResponses.WriteErrorAsync(context.Response, e.Status, e.Message).ConfigureAwait(false);
        }
        catch (MedServe.Registry.Store.RegistryException e)
        {
            await ApiResponses.WriteErrorAsync(context.Response, StatusCodes.Status400BadRequest, e.Message).ConfigureAwait(false);
        }
    }
}
