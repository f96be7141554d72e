using System.Security.Claims;
using MedServe.Repository;

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

    /// <summary>Reading stored predictions: their inputs and outputs, decrypted, are patient data.</summary>
    public const string PredictionsRead = "predictions:read";

    /// <summary>Reporting clinical outcomes for logged predictions.</summary>
    public const string OutcomesWrite = "outcomes:write";
    public const string Admin = "admin";

    /// <summary>A policy, not a scope: any valid credential (the not-found answer for unknown routes).</summary>
    public const string AnyCredential = "authenticated";

    /// <summary>The claim type a principal's scopes travel in (one claim per scope).</summary>
    public const string ClaimType = "medserve:scope";

    public static readonly IReadOnlyList<string> All = [Infer, ModelsRead, ModelsWrite, AuditRead, PredictionsRead, OutcomesWrite, Admin];

    /// <summary>Scopes whose use leaves an audit record: inference, changes, reading the audit trail or stored predictions, key management.</summary>
    public static bool IsAudited(string scope) => scope is Infer or ModelsWrite or AuditRead or PredictionsRead or OutcomesWrite or Admin;

    /// <summary>What <see cref="IsValid"/> accepts, for error messages.</summary>
    public static readonly string Grammar = $"{string.Join(", ", All)} or infer:<model> (a model name is {ModelNames.Grammar})";

    private const string ModelPrefix = Infer + ":";

    /// <summary>
    /// Exactly a known name, or <c>infer:</c> and a name in the model-name grammar. Nothing else:
    /// no whitespace or separator can hide a second scope inside one.
    /// </summary>
    public static bool IsValid(string? scope) =>
        scope is Infer or ModelsRead or ModelsWrite or AuditRead or PredictionsRead or OutcomesWrite or Admin
        || (scope is not null && scope.StartsWith(ModelPrefix, StringComparison.Ordinal) && ModelNames.IsValid(scope.AsSpan(ModelPrefix.Length)));

    /// <summary>The refusal of a scope that is not valid; the scope is shown shortened and escaped.</summary>
    public static string Refusal(string scope) => $"unknown scope '{ModelNames.Quote(scope)}'; scopes are {Grammar}";

    /// <summary>
    /// Whether the principal holds the scope. For <c>infer</c>, <paramref name="model"/> narrows the
    /// check to that model; without one, any inference scope passes (the model is checked later).
    /// </summary>
    public static bool Grants(ClaimsPrincipal user, string scope, string? model = null)
    {
        foreach (var claim in user.FindAll(ClaimType))
        {
            var held = claim.Value;
            if (!IsValid(held))
            {
                continue; // However it got here, a malformed scope grants nothing.
            }

            if (held == Admin || held == scope)
            {
                return true;
            }

            if (scope == Infer && held.StartsWith(ModelPrefix, StringComparison.Ordinal)
                && (model is null || held.AsSpan(ModelPrefix.Length).SequenceEqual(model)))
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>Endpoint metadata: this endpoint's use is journaled although its scope alone would not make it so (a read of derived patient data).</summary>
public sealed class AuditedEndpoint;
