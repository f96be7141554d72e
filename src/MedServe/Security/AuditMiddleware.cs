using System.Globalization;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Routing;

namespace MedServe.Security;

/// <summary>
/// Gives every request an id (<c>X-Request-Id</c>) and, for audited endpoints and every refused
/// credential, writes the audit record when the response starts: the status is known by then and
/// no byte of the answer has left, so an answered request always has a durable record. If the
/// record cannot be written the callback throws, the server drops the answer and sends a bare 500.
/// </summary>
public sealed class AuditMiddleware(RequestDelegate next, AuditTrail trail, MedServe.Predictions.PredictionCapture capture, TimeProvider time)
{
    public const string RequestIdHeader = "X-Request-Id";

    private static readonly string Prefix = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
    private static long _counter;

    public Task InvokeAsync(HttpContext context)
    {
        var requestId = NewRequestId();
        context.Response.Headers[RequestIdHeader] = requestId;

        // The journal's request id on the trace: one finds the other.
        System.Diagnostics.Activity.Current?.SetTag("medserve.request_id", requestId);
        if (!trail.Enabled)
        {
            return next(context);
        }

        var scope = ScopeAuthorization.RequiredScope(context.GetEndpoint());
        var audited = scope is not null && (Scopes.IsAudited(scope) || context.GetEndpoint()?.Metadata.GetMetadata<AuditedEndpoint>() is not null);
        if (audited && !IsGrpc(context) && context.User.Identity?.IsAuthenticated == true && trail.Unavailable(out var full) is { } reason)
        {
            // Refused before any work: a request whose record cannot be written gets no answer.
            if (full)
            {
                context.Response.Headers.RetryAfter = "1";
            }

            return MedServe.Http.V2.ApiResponses.WriteErrorAsync(context.Response, StatusCodes.Status503ServiceUnavailable, reason);
        }

        var details = new AuditDetails(capture, time.GetTimestamp());
        context.Features.Set(details);
        context.Response.OnStarting(() => RecordAsync(context, details, audited, requestId));
        return next(context);
    }

    /// <summary>Unique across restarts without a clock: a random prefix per process and a counter.</summary>
    public static string NewRequestId() => string.Create(CultureInfo.InvariantCulture, $"{Prefix}-{Interlocked.Increment(ref _counter):x}");

    internal static bool IsGrpc(HttpContext context) =>
        context.Request.ContentType?.StartsWith("application/grpc", StringComparison.Ordinal) == true;

    private Task RecordAsync(HttpContext context, AuditDetails details, bool audited, string requestId)
    {
        var status = context.Response.StatusCode;
        var denied = status is StatusCodes.Status401Unauthorized or StatusCodes.Status403Forbidden;
        if (details.Recorded || !(denied || audited))
        {
            return Task.CompletedTask;
        }

        details.Recorded = true;
        var request = context.Request;
        var client = context.Connection.RemoteIpAddress?.ToString() ?? "";
        var outcome = GrpcOutcome(context) ?? status.ToString(CultureInfo.InvariantCulture);
        if (denied)
        {
            trail.RecordRefusal(context.User, Action(context), details.Resource ?? Resource(request.RouteValues), outcome, requestId, client);
            return Task.CompletedTask;
        }

        var patient = details.PatientId ?? (request.Headers.TryGetValue(AuditDetails.PatientHeader, out var header) ? header.ToString() : null);
        return trail.RecordAsync(context.User, Action(context), details.Resource ?? Resource(request.RouteValues), outcome, requestId, client, patient, details);
    }

    /// <summary>
    /// A gRPC call the interceptor never saw (a method or service that does not exist) answers HTTP
    /// 200 with its real status in grpc-status (a trailers-only response): that status is the outcome.
    /// </summary>
    private static string? GrpcOutcome(HttpContext context) =>
        IsGrpc(context)
        && context.Response.Headers.TryGetValue("grpc-status", out var value)
        && int.TryParse(value.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var code)
            ? ((global::Grpc.Core.StatusCode)code).ToString()
            : null;

    /// <summary>The route template, never the concrete path: a path segment may be anything a client typed.</summary>
    internal static string Action(HttpContext context) => context.GetEndpoint() switch
    {
        RouteEndpoint route => $"{context.Request.Method} {(route.RoutePattern.RawText is { Length: > 1 } raw ? raw.TrimEnd('/') : route.RoutePattern.RawText)}",
        { DisplayName: { } name } => name,
        _ => $"{context.Request.Method} (no route)",
    };

    internal static string Resource(RouteValueDictionary values)
    {
        var model = values["model"] as string;
        if (model is not null)
        {
            return values["version"] is string version ? $"{model}/{version}" : model;
        }

        return values["name"] as string ?? "";
    }
}
