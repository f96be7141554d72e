using MedServe.Http.Registry;
using MedServe.Http.V2;
using MedServe.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace MedServe.Http;

/// <summary>The Open Inference Protocol v2 REST frontend (with Triton's extensions) in one call.</summary>
public static class HttpFrontend
{
    public static IEndpointRouteBuilder MapOpenInferenceProtocol(this IEndpointRouteBuilder routes)
    {
        routes.MapServerApi();
        routes.MapStatisticsApi();
        routes.MapModelApi();
        routes.MapRepositoryApi();
        routes.MapMetricsApi();
        routes.MapRegistryApi();
        routes.MapMlflowApi();
        routes.MapFallback((HttpContext context) =>
            ApiResponses.WriteErrorAsync(context.Response, StatusCodes.Status404NotFound,
                $"no route for {context.Request.Method} {context.Request.Path}")).RequireAuthorization(Scopes.AnyCredential);
        return routes;
    }
}
