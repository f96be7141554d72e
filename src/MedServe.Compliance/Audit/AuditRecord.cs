using System.Security.Cryptography;
using System.Text;
using MedServe.Compliance.Journal;

namespace MedServe.Compliance.Audit;

/// <summary>
/// One audited event, as an export shows it. Never holds patient data: a patient appears only as
/// a pseudonym (an HMAC of the identifier under a server secret).
/// </summary>
public sealed record AuditEvent(
    DateTimeOffset Time,
    string Actor,
    string Action,
    string Resource,
    string Outcome,
    string RequestId,
    string ClientAddress,
    string PatientPseudonym);

/// <summary>A journal record seen as an audit event: its sequence, the previous record's hash and its own (hex).</summary>
public sealed record AuditRecord(long Sequence, AuditEvent Event, string PreviousHash, string Hash)
{
    public static AuditRecord From(JournalRecord record)
    {
        var e = record.Entry;
        return new AuditRecord(
            record.Sequence,
            new AuditEvent(e.Time, e.Actor, e.Action, e.Resource, e.Outcome, e.RequestId, e.ClientAddress, e.PatientPseudonym),
            Convert.ToHexStringLower(record.PreviousHash),
            Convert.ToHexStringLower(record.Hash));
    }
}

/// <summary>Patient identifiers become pseudonyms: HMAC-SHA256 under a server secret, so the same patient maps to the same value and nobody can reverse it.</summary>
public sealed class Pseudonymizer(byte[] secret)
{
    public string Pseudonym(string patientId) =>
        patientId.Length == 0 ? "" : Convert.ToHexStringLower(HMACSHA256.HashData(secret, Encoding.UTF8.GetBytes(patientId)));
}
