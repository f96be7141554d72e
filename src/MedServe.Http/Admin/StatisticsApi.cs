using System.Text.Json;
using MedServe.Http.Codec;
using MedServe.Http.V2;
using MedServe.Security;
using MedServe.Stats;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace MedServe.Http.Admin;

/// <summary>POST /v1/statistics/{kind}: the statistics engine over HTTP (any key that may read models); a bad input is a 400 naming the field.</summary>
public static class StatisticsApi
{
    public static IEndpointRouteBuilder MapStatisticsApi(this IEndpointRouteBuilder routes)
    {
        routes.MapPost("/v1/statistics/{kind}", Compute).RequireAuthorization(Scopes.ModelsRead);
        return routes;
    }

    private static async Task Compute(HttpContext context, string kind)
    {
        IReadOnlyDictionary<string, object> result;
        try
        {
            using var body = await JsonBody.ReadObjectAsync(context, message => new StatisticsException(message)).ConfigureAwait(false);
            result = await Task.Run(() => StatisticsKinds.Run(kind, body.RootElement), context.RequestAborted).ConfigureAwait(false);
        }
        catch (StatisticsException e)
        {
            await ApiResponses.WriteErrorAsync(context.Response, StatusCodes.Status400BadRequest, e.Message).ConfigureAwait(false);
            return;
        }

        context.Response.ContentType = "application/json";
        await JsonSerializer.SerializeAsync(context.Response.Body, result, cancellationToken: context.RequestAborted).ConfigureAwait(false);
    }
}
