namespace MedServe.Compliance.Audit;

/// <summary>
/// Where audit records live: append-only and hash-chained, whatever holds them. The embedded
/// SQLite store is the default; a shared database can take its place behind this interface.
/// </summary>
public interface IAuditStore
{
    /// <summary>Chains the event after the last record; completes only once it is durable, fails when it cannot be.</summary>
    Task AppendAsync(AuditEvent auditEvent);

    /// <summary>Walks the whole chain and its signed checkpoints; names the first record that is not as written.</summary>
    Task<AuditVerdict> VerifyAsync(CancellationToken cancellationToken = default);

    /// <summary>Records from a sequence number on (or back, descending), at most <paramref name="limit"/>.</summary>
    Task<IReadOnlyList<AuditRecord>> ReadAsync(long fromSequence, int limit, bool descending = false);

    /// <summary>Records with from &lt;= time &lt; to, in chain order.</summary>
    Task<IReadOnlyList<AuditRecord>> ReadRangeAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default);
}
