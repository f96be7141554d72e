using MedServe.Compliance.Journal;

namespace MedServe.Compliance.Predictions;

/// <summary>
/// One inference as the prediction log keeps it: the journal record's clear fields and its payload,
/// still encrypted (envelope bound to <see cref="RequestId"/>). Decryption happens only on an audited read.
/// </summary>
public sealed record StoredPrediction(
    long Sequence,
    DateTimeOffset Time,
    string Model,
    string Version,
    string RequestId,
    string ClientRequestId,
    string PatientPseudonym,
    string Outcome,
    long LatencyMicroseconds,
    byte[] Payload);

/// <summary>An outcome as the store keeps it: the prediction it belongs to and its envelope (label or value, encrypted, bound to the prediction's request id).</summary>
public sealed record StoredOutcome(long PredictionSequence, byte[] Envelope, DateTimeOffset RecordedAt, int Revisions);

/// <summary>A prediction with its outcome, for performance.</summary>
public sealed record PredictionWithOutcome(StoredPrediction Prediction, StoredOutcome Outcome);

/// <summary>Which predictions: a model (and version), a time window [From, To), a patient pseudonym, after a sequence (paging).</summary>
public sealed record PredictionQuery(string Model, string? Version, DateTimeOffset From, DateTimeOffset To, string? PatientPseudonym, long AfterSequence, int Limit);

/// <summary>
/// The queryable projection of the journal's inference records (predictions by model, version,
/// time and patient; the outcomes of the next issue join here). The journal is the source of
/// truth: a store can be dropped and rebuilt from it. The embedded default is SQLite; the
/// PostgreSQL store of the scale-out issue implements the same interface.
/// </summary>
public interface IPredictionStore : IAsyncDisposable
{
    /// <summary>The last journal sequence applied (0 for an empty store).</summary>
    Task<long> ProjectedThroughAsync(CancellationToken cancellationToken = default);

    /// <summary>Adds the inference records among <paramref name="records"/> and moves the watermark to <paramref name="through"/>, atomically; re-applying a record is harmless.</summary>
    Task ApplyAsync(IReadOnlyList<JournalRecord> records, long through, CancellationToken cancellationToken = default) =>
        ApplyAsync(records, [], through, cancellationToken);

    /// <summary>As above, with the outcomes among the records (read from their payloads by the caller); a later outcome of a prediction replaces an earlier one.</summary>
    Task ApplyAsync(IReadOnlyList<JournalRecord> records, IReadOnlyList<(long JournalSequence, long PredictionSequence, byte[] Envelope, DateTimeOffset RecordedAt)> outcomes, long through, CancellationToken cancellationToken = default);

    /// <summary>The prediction whose server request id, or else client v2 id, is <paramref name="id"/>; the newest when several clients reused an id.</summary>
    Task<StoredPrediction?> FindAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>The patient's latest prediction of the model with notBefore &lt;= time &lt; before.</summary>
    Task<StoredPrediction?> FindLatestForPatientAsync(string model, string pseudonym, DateTimeOffset before, DateTimeOffset notBefore, CancellationToken cancellationToken = default);

    Task<StoredOutcome?> GetOutcomeAsync(long predictionSequence, CancellationToken cancellationToken = default);

    /// <summary>A model's predictions that have outcomes, in a version (null: all) and time window [from, to).</summary>
    Task<IReadOnlyList<PredictionWithOutcome>> QueryWithOutcomesAsync(string model, string? version, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default);

    Task<IReadOnlyList<StoredPrediction>> QueryAsync(PredictionQuery query, CancellationToken cancellationToken = default);

    /// <summary>
    /// Removes predictions made before <paramref name="before"/>, with their outcomes, every
    /// replica's alike (retention: the journal keeps them until it is archived). Deletes in batches
    /// so the projector is never held up for long; returns how many predictions went.
    /// </summary>
    Task<long> PruneAsync(DateTimeOffset before, CancellationToken cancellationToken = default);

    /// <summary>Forgets everything (a rebuild from the journal starts here).</summary>
    Task ResetAsync(CancellationToken cancellationToken = default);
}
