using MedServe.Lifecycle;
using MedServe.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace MedServe.Http.V2;

/// <summary>Server health and metadata: GET v2/health/live, v2/health/ready, v2.</summary>
public static class ServerApi
{
    public static IEndpointRouteBuilder MapServerApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/v2/health/live", Live).AllowAnonymous();
        routes.MapGet("/v2/health/ready", Ready).AllowAnonymous();
        routes.MapGet("/v2", Metadata).RequireAuthorization(Scopes.ModelsRead);
        return routes;
    }

    private static Task Live(HttpContext context) =>
        ApiResponses.WriteJsonAsync(context.Response, StatusCodes.Status200OK, w =>
        {
            w.WriteStartObject();
            w.WriteBoolean("live", true);
            w.WriteEndObject();
        });

    private static Task Ready(HttpContext context, ModelManager models, IEnumerable<IReadinessCondition> conditions)
    {
        var ready = models.IsReady;
        foreach (var condition in conditions)
        {
            ready &= condition.NotReadyReason is null;
        }

        return ApiResponses.WriteJsonAsync(context.Response, ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable, w =>
        {
            w.WriteStartObject();
            w.WriteBoolean("ready", ready);
            w.WriteEndObject();
        });
    }

    private static Task Metadata(HttpContext context) =>
        ApiResponses.WriteJsonAsync(context.Response, StatusCodes.Status200OK, w =>
        {
            w.WriteStartObject();
            w.WriteString("name", ServerInfo.Name);
            w.WriteString("version", ServerInfo.Version);
            w.WriteStartArray("extensions");
            foreach (var extension in ServerInfo.Extensions)
            {
                w.WriteStringValue(extension);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        });
}
