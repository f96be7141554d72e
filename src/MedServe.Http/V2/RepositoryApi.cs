using System.Text.Json;
using MedServe.Http.Codec;
using MedServe.Inference;
using MedServe.Lifecycle;
using MedServe.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace MedServe.Http.V2;

/// <summary>Triton's model repository extension: index, load (optionally with a config), unload.</summary>
public static class RepositoryApi
{
    public static IEndpointRouteBuilder MapRepositoryApi(this IEndpointRouteBuilder routes)
    {
        // A read, as on gRPC (RepositoryIndex): it lists what is there and changes nothing.
        routes.MapPost("/v2/repository/index", Index).RequireAuthorization(Scopes.ModelsRead);
        routes.MapPost("/v2/repository/models/{model}/load", Load).RequireAuthorization(Scopes.ModelsWrite);
        routes.MapPost("/v2/repository/models/{model}/unload", Unload).RequireAuthorization(Scopes.ModelsWrite);
        return routes;
    }

    private static Task Index(HttpContext context, ModelManager models) =>
        ModelApi.Guard(context, async () =>
        {
            using var body = await ReadOptionalJsonAsync(context).ConfigureAwait(false);
            var readyOnly = false;
            if (body.RootElement.TryGetProperty("ready", out var ready))
            {
                readyOnly = ready.ValueKind switch
                {
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    _ => throw InferenceException.Invalid("'ready' must be true or false"),
                };
            }

            var entries = models.Index(readyOnly);
            await ApiResponses.WriteJsonAsync(context.Response, StatusCodes.Status200OK, w =>
            {
                w.WriteStartArray();
                foreach (var entry in entries)
                {
                    w.WriteStartObject();
                    w.WriteString("name", entry.Name);
                    if (entry.Version is { } version)
                    {
                        w.WriteString("version", version.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    }

                    if (entry.State is { } state)
                    {
                        w.WriteString("state", state.ToWireName());
                    }

                    if (!string.IsNullOrEmpty(entry.Reason))
                    {
                        w.WriteString("reason", entry.Reason);
                    }

                    w.WriteEndObject();
                }

                w.WriteEndArray();
            }).ConfigureAwait(false);
        });

    private static Task Load(HttpContext context, ModelManager models, string model) =>
        ModelApi.Guard(context, async () =>
        {
            using var body = await ReadOptionalJsonAsync(context).ConfigureAwait(false);
            string? config = null;
            if (body.RootElement.TryGetProperty("parameters", out var parameters))
            {
                if (parameters.ValueKind != JsonValueKind.Object)
                {
                    throw InferenceException.Invalid("'parameters' must be an object");
                }

                foreach (var parameter in parameters.EnumerateObject())
                {
                    if (parameter.Name == "config")
                    {
                        config = parameter.Value.ValueKind == JsonValueKind.String
                            ? parameter.Value.GetString()
                            : throw InferenceException.Invalid("parameter 'config' must be a string holding the model config as JSON");
                    }
                    else if (parameter.Name.StartsWith("file:", StringComparison.Ordinal))
                    {
                        throw InferenceException.Invalid($"parameter '{parameter.Name}': loading model files through the API is not supported; place them in the repository");
                    }
                    else
                    {
                        throw InferenceException.Invalid($"unexpected load parameter '{parameter.Name}'");
                    }
                }
            }

            await models.LoadAsync(model, config, context.RequestAborted).ConfigureAwait(false);
            await WriteEmptyAsync(context).ConfigureAwait(false);
        });

    private static Task Unload(HttpContext context, ModelManager models, string model) =>
        ModelApi.Guard(context, async () =>
        {
            using var body = await ReadOptionalJsonAsync(context).ConfigureAwait(false);
            await models.UnloadAsync(model, context.RequestAborted).ConfigureAwait(false);
            await WriteEmptyAsync(context).ConfigureAwait(false);
        });

    private static Task WriteEmptyAsync(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentLength = 0;
        return Task.CompletedTask;
    }

    /// <summary>A small JSON body; an empty one counts as {} (tritonclient sends one for the index).</summary>
    private static Task<JsonDocument> ReadOptionalJsonAsync(HttpContext context) =>
        JsonBody.ReadObjectAsync(context, InferenceException.Invalid);
}
