using System.Security.Claims;

namespace MedServe.Security;

/// <summary>
/// What a credential may do. Every endpoint names one of these as its authorization policy;
/// <c>admin</c> grants them all, <c>infer:&lt;model&gt;</c> grants inference on one model only.
/// </summary>
public static class Scopes
{
    public const string Infer = "infer";
    public const string ModelsRead = "models:read";
    public const string ModelsWrite = "models:write";
    public const string AuditRead = "audit:read";
    public const string Admin = "admin";

    /// <summary>A policy, not a scope: any valid credential (the not-found answer for unknown routes).</summary>
    public const string AnyCredential = "authenticated";

    /// <summary>The claim type a principal's scopes travel in (one claim per scope).</summary>
    public const string ClaimType = "medserve:scope";

    public static readonly IReadOnlyList<string> All = [Infer, ModelsRead, ModelsWrite, AuditRead, Admin];

    /// <summary>Scopes whose use leaves an audit record: inference, changes, reading the audit trail, key management.</summary>
    public static bool IsAudited(string scope) => scope is Infer or ModelsWrite or AuditRead or Admin;

    public static bool IsValid(string scope) =>
        All.Contains(scope) || (scope.StartsWith(Infer + ":", StringComparison.Ordinal) && scope.Length > Infer.Length + 1);

    /// <summary>
    /// Whether the principal holds the scope. For <c>infer</c>, <paramref name="model"/> narrows the
    /// check to that model; without one, any inference scope passes (the model is checked later).
    /// </summary>
    public static bool Grants(ClaimsPrincipal user, string scope, string? model = null)
    {
        foreach (var claim in user.FindAll(ClaimType))
        {
            var held = claim.Value;
            if (held == Admin || held == scope)
            {
                return true;
            }

            if (scope == Infer && held.StartsWith(Infer + ":", StringComparison.Ordinal)
                && (model is null || held.AsSpan(Infer.Length + 1).SequenceEqual(model)))
            {
                return true;
            }
        }

        return false;
    }
}
