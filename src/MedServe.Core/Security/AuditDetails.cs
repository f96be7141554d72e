namespace MedServe.Security;

/// <summary>
/// What a handler knows that the audit record needs and the route does not say: the model version
/// that actually answered and the patient the request names. Lives in the request's features;
/// handlers fill it, the audit middleware reads it when the response starts.
/// </summary>
public sealed class AuditDetails
{
    /// <summary>The parameter (REST and gRPC) and header that name a patient; only a pseudonym of it is kept.</summary>
    public const string PatientParameter = "patient_id";
    public const string PatientHeader = "X-Patient-Id";

    public string? Resource { get; set; }

    public string? PatientId { get; set; }

    /// <summary>Set once a record is written (by the gRPC interceptor), so the response start does not write a second.</summary>
    public bool Recorded { get; set; }
}
