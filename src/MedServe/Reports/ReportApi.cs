using MedServe.Compliance.Audit;
using MedServe.Http.V2;
using MedServe.Security;

namespace MedServe.Reports;

/// <summary>GET /v1/models/{model}/report: the model's self-contained HTML report (scope models:read, audited).</summary>
public static class ReportApi
{
    /// <summary>The page needs nothing from anywhere: its own inline script and style, and no network at all.</summary>
    public const string ContentSecurityPolicy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

    public static IEndpointRouteBuilder MapReportApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/v1/models/{model}/report", Get).RequireAuthorization(Scopes.ModelsRead).WithMetadata(new AuditedEndpoint());
        return routes;
    }

    private static async Task Get(HttpContext context, string model, ModelReport report)
    {
        var query = context.Request.Query;
        if (!AuditTimeRange.TryParse(query["from"], query["to"], out var from, out var to))
        {
            await ApiResponses.WriteErrorAsync(context.Response, StatusCodes.Status400BadRequest, "'from' and 'to' " + AuditTimeRange.Expected).ConfigureAwait(false);
            return;
        }

        var html = await report.BuildAsync(model, query["version"].ToString() is { Length: > 0 } v ? v : null,
            query["from"].Count > 0 ? from : null, query["to"].Count > 0 ? to : null, context.RequestAborted).ConfigureAwait(false);
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "text/html; charset=utf-8";
        context.Response.Headers.ContentSecurityPolicy = ContentSecurityPolicy;
        context.Response.Headers.XContentTypeOptions = "nosniff";
        await context.Response.WriteAsync(html, context.RequestAborted).ConfigureAwait(false);
    }
}
