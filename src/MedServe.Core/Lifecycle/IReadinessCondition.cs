namespace MedServe.Lifecycle;

/// <summary>
/// Something besides the models that the server needs to answer (the journal, for audited
/// routes): while any reports a reason, <c>/v2/health/ready</c> answers false.
/// </summary>
public interface IReadinessCondition
{
    /// <summary>Null when ready; else why not (for logs, never for the anonymous health answer).</summary>
    string? NotReadyReason { get; }
}
