using System.Security.Cryptography;
using MedServe.Compliance.Audit;

namespace MedServe.Compliance.Journal;

/// <summary>
/// The server's audit trail and prediction log: the journal it writes, and the reads it answers
/// (verify, export) over the same files. A live verification reads only up to the head the writer
/// last made durable, with the key the server signs with: one snapshot, a pinned key.
/// </summary>
public sealed class AuditJournal : IAsyncDisposable
{
    private readonly string? _openFailure;

    private AuditJournal(InferenceJournal? writer, ECDsa publicKey, string folder, string anchorPath, string? openFailure, IReadOnlyList<string> archives)
    {
        Archives = archives;
        Writer = writer;
        PublicKey = publicKey;
        Folder = folder;
        AnchorPath = anchorPath;
        _openFailure = openFailure;
    }

    /// <summary>Null when the journal could not be opened (its tail fails the anchor): audited routes then refuse.</summary>
    public InferenceJournal? Writer { get; }

    public string AnchorPath { get; }

    /// <summary>Folders archived segments were moved to: read by verify and export with the journal's own.</summary>
    public IReadOnlyList<string> Archives { get; }

    /// <summary>The public half of the signing key, taken from the key in memory, never from a file beside the journal.</summary>
    public ECDsa PublicKey { get; }

    public string Folder { get; }

    /// <summary>Null while the journal writes; else why it cannot (readiness reports it).</summary>
    public string? Failure => _openFailure ?? Writer!.Failure;

    /// <summary>
    /// Opens the journal; one that fails its checks at start (<see cref="JournalUnavailableException"/>)
    /// is kept closed, with the reason as its <see cref="Failure"/>, so the server can still say why.
    /// </summary>
    public static AuditJournal Open(JournalOptions options, ECDsa signer, TimeProvider time, IReadOnlyList<string>? archives = null)
    {
        var anchor = options.AnchorPath ?? Path.Combine(options.Folder, "anchor");
        try
        {
            return new(InferenceJournal.Open(options, signer, time), PublicKeyOf(signer), options.Folder, anchor, null, archives ?? []);
        }
        catch (JournalUnavailableException e)
        {
            return new(null, PublicKeyOf(signer), options.Folder, anchor, e.Message, archives ?? []);
        }
    }

    public static ECDsa PublicKeyOf(ECDsa key)
    {
        var publicKey = ECDsa.Create();
        publicKey.ImportSubjectPublicKeyInfo(key.ExportSubjectPublicKeyInfo(), out _);
        return publicKey;
    }

    /// <summary>Completes once the record is durable.</summary>
    public Task<long> AppendAsync(JournalEntry entry) =>
        Writer?.AppendAsync(entry) ?? Task.FromException<long>(new JournalUnavailableException(_openFailure!));

    /// <summary>Up to the head the writer last made durable (a live log reads as one snapshot); a closed journal against its anchor file.</summary>
    public JournalVerdict Verify() =>
        JournalVerifier.Verify(Folder, PublicKey, Writer?.Head ?? JournalAnchor.ReadFile(AnchorPath), Archives);

    /// <summary>Audit records (checkpoints left out) with from &lt;= time &lt; to, in chain order, up to the durable head.</summary>
    public IReadOnlyList<AuditRecord> ReadRange(DateTimeOffset from, DateTimeOffset to) =>
        ReadRange(Folder, from, to, Writer?.DurableSequence ?? long.MaxValue, Archives);

    public static IReadOnlyList<AuditRecord> ReadRange(string folder, DateTimeOffset from, DateTimeOffset to, long through = long.MaxValue, IReadOnlyList<string>? archives = null)
    {
        var records = new List<AuditRecord>();
        long next = 1;
        while (true)
        {
            var page = JournalVerifier.Read(folder, next, 4096, through, archives);
            foreach (var record in page)
            {
                var time = record.Entry.Time;
                if (record.Entry.Kind != JournalKind.Checkpoint && time >= from && time < to)
                {
                    records.Add(AuditRecord.From(record));
                }
            }

            if (page.Count < 4096)
            {
                return records;
            }

            next = page[^1].Sequence + 1;
        }
    }

    public ValueTask DisposeAsync() => Writer?.DisposeAsync() ?? ValueTask.CompletedTask;
}
