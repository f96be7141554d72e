using System.Security.Cryptography;
using System.Text;

namespace MedServe.Compliance.Audit;

/// <summary>
/// One audited event. Never holds patient data: a patient appears only as a pseudonym (an HMAC of
/// the identifier under a server secret).
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

/// <summary>An event in the chain: its sequence number, the previous record's hash and its own.</summary>
public sealed record AuditRecord(long Sequence, AuditEvent Event, string PreviousHash, string Hash)
{
    public const string Genesis = "0000000000000000000000000000000000000000000000000000000000000000";

    /// <summary>SHA-256 over the sequence, every field (length-prefixed, so no two records collide) and the previous hash.</summary>
    public static string ComputeHash(long sequence, AuditEvent e, string previousHash)
    {
        var text = new StringBuilder();
        foreach (var field in new[]
        {
            sequence.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Time.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture),
            e.Actor, e.Action, e.Resource, e.Outcome, e.RequestId, e.ClientAddress, e.PatientPseudonym, previousHash,
        })
        {
            text.Append(field.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)).Append(':').Append(field).Append('|');
        }

        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }
}

/// <summary>Patient identifiers become pseudonyms: HMAC-SHA256 under a server secret, so the same patient maps to the same value and nobody can reverse it.</summary>
public sealed class Pseudonymizer(byte[] secret)
{
    public string Pseudonym(string patientId) =>
        patientId.Length == 0 ? "" : Convert.ToHexStringLower(HMACSHA256.HashData(secret, Encoding.UTF8.GetBytes(patientId)));
}
