using System.Globalization;
using Hl7.Fhir.Serialization;
using R4 = Hl7.Fhir.Model;

namespace MedServe.Compliance.Audit;

/// <summary>
/// Exports audit records as FHIR R4 AuditEvent resources (https://hl7.org/fhir/R4/auditevent.html), one compact JSON
/// resource per line (NDJSON, as FHIR bulk data uses). The export carries only what the record holds: a patient appears
/// only as the record's pseudonym, never by any other identifier.
/// </summary>
public static class FhirAuditExport
{
    public const string AuditEventTypeSystem = "http://terminology.hl7.org/CodeSystem/audit-event-type";
    public const string ActionSystem = "urn:medserve:audit-action";
    public const string SourceTypeSystem = "http://terminology.hl7.org/CodeSystem/security-source-type";
    public const string EntityTypeSystem = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
    public const string ObjectRoleSystem = "http://terminology.hl7.org/CodeSystem/object-role";
    public const string PseudonymSystem = "urn:medserve:patient-pseudonym";

    /// <summary>Maps one audit record to an R4 AuditEvent.</summary>
    public static R4.AuditEvent ToFhir(AuditRecord record, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentException.ThrowIfNullOrEmpty(sourceName);
        var e = record.Event;

        var agent = new R4.AuditEvent.AgentComponent
        {
            Requestor = true,
            Who = e.Actor.Length > 0 ? new R4.ResourceReference { Display = e.Actor } : null,
            Network = e.ClientAddress.Length > 0
                ? new R4.AuditEvent.NetworkComponent { Address = e.ClientAddress, Type = R4.AuditEvent.AuditEventAgentNetworkType.N2 }
                : null,
        };

        var details = new List<R4.AuditEvent.DetailComponent>();
        if (e.RequestId.Length > 0)
        {
            details.Add(new R4.AuditEvent.DetailComponent { Type = "request-id", Value = new R4.FhirString(e.RequestId) });
        }

        details.Add(new R4.AuditEvent.DetailComponent { Type = "record-hash", Value = new R4.FhirString(record.Hash) });

        var entities = new List<R4.AuditEvent.EntityComponent>
        {
            new()
            {
                What = new R4.ResourceReference { Display = e.Resource.Length > 0 ? e.Resource : "-" },
                Type = new R4.Coding(EntityTypeSystem, "2", "System Object"),
                Detail = details,
            },
        };

        if (e.PatientPseudonym.Length > 0)
        {
            entities.Add(new R4.AuditEvent.EntityComponent
            {
                What = new R4.ResourceReference { Identifier = new R4.Identifier(PseudonymSystem, e.PatientPseudonym) },
                Type = new R4.Coding(EntityTypeSystem, "1", "Person"),
                Role = new R4.Coding(ObjectRoleSystem, "1", "Patient"),
            });
        }

        var subtype = ActionCode(e.Action);
        return new R4.AuditEvent
        {
            Id = record.Sequence.ToString(CultureInfo.InvariantCulture),
            Type = new R4.Coding(AuditEventTypeSystem, "rest", "RESTful Operation"),
            Subtype = subtype is null ? [] : [new R4.Coding(ActionSystem, subtype)],
            Action = ActionOf(e.Action),
            Recorded = e.Time,
            Outcome = OutcomeOf(e.Outcome),
            OutcomeDesc = "outcome " + e.Outcome,
            Agent = [agent],
            Source = new R4.AuditEvent.SourceComponent
            {
                Observer = new R4.ResourceReference { Display = sourceName },
                Type = [new R4.Coding(SourceTypeSystem, "4", "Application Server")],
            },
            Entity = entities,
        };
    }

    /// <summary>Writes each record as one compact AuditEvent JSON line ending in "\n"; returns how many were written.</summary>
    public static async Task<int> WriteNdjsonAsync(IEnumerable<AuditRecord> records, TextWriter output, string sourceName, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentException.ThrowIfNullOrEmpty(sourceName);
        var count = 0;
        foreach (var record in records)
        {
            cancellationToken.ThrowIfCancellationRequested();

            // Compact System.Text.Json output escapes every control character, so a value can never break the line.
            var json = FhirJsonSerializer.Default.SerializeToString(ToFhir(record, sourceName), pretty: false);
            await output.WriteAsync((json + "\n").AsMemory(), cancellationToken).ConfigureAwait(false);
            count++;
        }

        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
        return count;
    }

    /// <summary>
    /// Inference is execution (E); otherwise the HTTP method decides: GET R, POST C, PUT/PATCH U, DELETE D; anything else E.
    /// </summary>
    internal static R4.AuditEvent.AuditEventAction ActionOf(string action)
    {
        if (IsInference(action))
        {
            return R4.AuditEvent.AuditEventAction.E;
        }

        var space = action.IndexOf(' ', StringComparison.Ordinal);
        var method = space > 0 ? action[..space] : "";
        return method.ToUpperInvariant() switch
        {
            "GET" => R4.AuditEvent.AuditEventAction.R,
            "POST" => R4.AuditEvent.AuditEventAction.C,
            "PUT" or "PATCH" => R4.AuditEvent.AuditEventAction.U,
            "DELETE" => R4.AuditEvent.AuditEventAction.D,
            _ => R4.AuditEvent.AuditEventAction.E,
        };
    }

    /// <summary>2xx or OK: success (0); 5xx or a server-side gRPC failure: serious (8); anything else, a denial or bad request: minor (4).</summary>
    internal static R4.AuditEvent.AuditEventOutcome OutcomeOf(string outcome)
    {
        var text = outcome.Trim();
        if (text.Length == 3 && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var status))
        {
            return status switch
            {
                >= 200 and < 300 => R4.AuditEvent.AuditEventOutcome.N0,
                >= 500 and < 600 => R4.AuditEvent.AuditEventOutcome.N8,
                _ => R4.AuditEvent.AuditEventOutcome.N4,
            };
        }

        return text.Replace("_", "", StringComparison.Ordinal).ToUpperInvariant() switch
        {
            "OK" => R4.AuditEvent.AuditEventOutcome.N0,
            "INTERNAL" or "UNAVAILABLE" or "DATALOSS" or "UNKNOWN" => R4.AuditEvent.AuditEventOutcome.N8,
            _ => R4.AuditEvent.AuditEventOutcome.N4,
        };
    }

    /// <summary>
    /// An inference call: a path segment or word "infer" (POST /v2/models/{model}/infer, "infer") or a gRPC method ending
    /// in Infer (ModelInfer, /inference.GRPCInferenceService/ModelStreamInfer). Matched per token, so a path that merely
    /// mentions "inference" (GET /v2/models/inference-stats) stays a read.
    /// </summary>
    private static bool IsInference(string action) =>
        action.Split([' ', '/', '.', ':', '?'], StringSplitOptions.RemoveEmptyEntries)
            .Any(token => token.Equals("infer", StringComparison.OrdinalIgnoreCase)
                || (token.Length > "Infer".Length && token.EndsWith("Infer", StringComparison.Ordinal)));

    /// <summary>
    /// The action as a FHIR code, which may not be empty nor hold runs of whitespace or line breaks: whitespace collapses
    /// to single spaces; an action with nothing else has no code (null).
    /// </summary>
    private static string? ActionCode(string action)
    {
        var code = string.Join(' ', action.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        return code.Length > 0 ? code : null;
    }
}
