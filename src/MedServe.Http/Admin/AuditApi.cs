using MedServe.Compliance.Audit;
using MedServe.Compliance.Journal;
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

    /// <summary>Reads up to the head the writer last made durable, with the key the server signs with: consistent while requests are answered.</summary>
    private static async Task Verify(HttpContext context, AuditJournal journal)
    {
        var verdict = await Task.Run(journal.Verify, context.RequestAborted).ConfigureAwait(false);
        await ApiResponses.WriteJsonAsync(context.Response, verdict.Intact ? StatusCodes.Status200OK : StatusCodes.Status409Conflict, w =>
        {
            w.WriteStartObject();
            w.WriteBoolean("intact", verdict.Intact);
            w.WriteNumber("records", verdict.Records);
            w.WriteNumber("checkpoints", verdict.Checkpoints);
            if (verdict.FirstBadSequence is { } bad)
            {
                w.WriteNumber("first_bad_record", bad);
                w.WriteString("problem", verdict.Problem);
            }

            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    /// <summary><c>?from=&amp;to=</c> (ISO 8601; from inclusive, to exclusive; both optional).</summary>
    private static async Task Export(HttpContext context, AuditJournal journal)
    {
        if (!AuditTimeRange.TryParse(context.Request.Query["from"], context.Request.Query["to"], out var from, out var to))
        {
            await ApiResponses.WriteErrorAsync(context.Response, StatusCodes.Status400BadRequest, "'from' and 'to' " + AuditTimeRange.Expected).ConfigureAwait(false);
            return;
        }

        var records = await Task.Run(() => journal.ReadRange(from, to), context.RequestAborted).ConfigureAwait(false);
        context.Response.ContentType = "application/fhir+ndjson";
        await using var writer = new StreamWriter(context.Response.Body, leaveOpen: true);
        await FhirAuditExport.WriteNdjsonAsync(records, writer, "MedServe", context.RequestAborted).ConfigureAwait(false);
    }
}
