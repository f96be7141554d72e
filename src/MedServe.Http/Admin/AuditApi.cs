using System.Globalization;
using MedServe.Compliance.Audit;
using MedServe.Http.V2;
using MedServe.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace MedServe.Http.Admin;

/// <summary>
/// /v1/audit: verify the chain, and export a time range as FHIR R4 AuditEvent NDJSON. Reading the
/// trail needs <c>audit:read</c> and is itself audited.
/// </summary>
public static class AuditApi
{
    public const string Prefix = "/v1/audit";

    public static IEndpointRouteBuilder MapAuditApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup(Prefix).RequireAuthorization(Scopes.AuditRead);
        group.MapGet("/verify", Verify);
        group.MapGet("/events", Export);
        return routes;
    }

    private static async Task Verify(HttpContext context, IAuditStore log)
    {
        var verdict = await log.VerifyAsync(context.RequestAborted).ConfigureAwait(false);
        await ApiResponses.WriteJsonAsync(context.Response, verdict.Intact ? StatusCodes.Status200OK : StatusCodes.Status409Conflict, w =>
        {
            w.WriteStartObject();
            w.WriteBoolean("intact", verdict.Intact);
            w.WriteNumber("records", verdict.Records);
            if (verdict.FirstBadSequence is { } bad)
            {
                w.WriteNumber("first_bad_record", bad);
                w.WriteString("problem", verdict.Problem);
            }

            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    /// <summary><c>?from=&amp;to=</c> (ISO 8601; from inclusive, to exclusive; both optional).</summary>
    private static async Task Export(HttpContext context, IAuditStore log)
    {
        if (!TryTime(context.Request.Query["from"], DateTimeOffset.MinValue, out var from) || !TryTime(context.Request.Query["to"], DateTimeOffset.MaxValue, out var to))
        {
            await ApiResponses.WriteErrorAsync(context.Response, StatusCodes.Status400BadRequest,
                "'from' and 'to' must be ISO 8601 times, e.g. 2026-11-27T00:00:00Z").ConfigureAwait(false);
            return;
        }

        var records = await log.ReadRangeAsync(from, to, context.RequestAborted).ConfigureAwait(false);
        context.Response.ContentType = "application/fhir+ndjson";
        await using var writer = new StreamWriter(context.Response.Body, leaveOpen: true);
        await FhirAuditExport.WriteNdjsonAsync(records, writer, "MedServe", context.RequestAborted).ConfigureAwait(false);
    }

    private static bool TryTime(string? text, DateTimeOffset absent, out DateTimeOffset time)
    {
        if (string.IsNullOrEmpty(text))
        {
            time = absent;
            return true;
        }

        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out time);
    }
}
