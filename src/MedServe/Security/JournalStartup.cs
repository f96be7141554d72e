using System.Security.Cryptography;
using MedServe.Compliance.Audit;
using MedServe.Compliance.Journal;
using MedServe.Hosting;

namespace MedServe.Security;

/// <summary>
/// Opens the server's journal: the key from outside the data dir when given, the anchor, the
/// cut-over from audit.db; and says at every start what a verifier must pin (the public key) and
/// where the head is kept beyond the data dir (the log stream, once a minute and at each start).
/// </summary>
public static partial class JournalStartup
{
    private static readonly TimeSpan HeadLogInterval = TimeSpan.FromMinutes(1);

    public static AuditJournal Open(ServerOptions server, ServerSecrets secrets, TimeProvider time, ILoggerFactory loggers)
    {
        var logger = loggers.CreateLogger("MedServe.Journal");
        var settings = server.Journal;
        var signer = secrets.JournalSigningKey(settings, out var keyInDataDir);
        var options = new JournalOptions
        {
            Folder = Path.GetFullPath(settings.Folder ?? Path.Combine(server.ResolvedDataDir, "journal")),
            AnchorPath = Path.GetFullPath(settings.AnchorPath ?? Path.Combine(server.ResolvedDataDir, "journal.anchor")),
            SegmentBytes = settings.SegmentBytes,
            QueueCapacity = settings.QueueCapacity,
            Durable = settings.Durable,
        };
        if (settings.ArchiveAfter is not null && string.IsNullOrWhiteSpace(settings.ArchiveFolder))
        {
            throw new Microsoft.Extensions.Options.OptionsValidationException(ServerOptions.Section, typeof(JournalSettings),
                ["Journal:ArchiveAfter is set but Journal:ArchiveFolder is not: say where archived segments go"]);
        }

        var archives = string.IsNullOrWhiteSpace(settings.ArchiveFolder) ? [] : new[] { Path.GetFullPath(settings.ArchiveFolder) };
        var journal = AuditJournal.Open(options, signer, time, archives);
        var publicKey = Convert.ToBase64String(journal.PublicKey.ExportSubjectPublicKeyInfo());
        LogPublicKey(logger, publicKey);
        if (keyInDataDir)
        {
            LogKeyInDataDir(logger);
        }

        if (Files.PathConfinement.IsInside(server.ResolvedDataDir, options.AnchorPath))
        {
            LogAnchorInDataDir(logger);
        }

        if (journal.Failure is { } failure)
        {
            LogRefusing(logger, failure);
            return journal;
        }

        var imported = LegacyAuditImport.RunAsync(Path.Combine(server.ResolvedDataDir, LegacyAuditImport.FileName), journal, time).GetAwaiter().GetResult();
        if (imported is not null)
        {
            LogImported(logger, imported.Records, imported.Verdict);
        }

        if (journal.Writer!.Head is { } head)
        {
            LogHead(logger, head.Sequence, Convert.ToHexStringLower(head.Hash), head.CheckpointSequence, Convert.ToBase64String(head.Signature));
        }

        var lastLogged = long.MinValue;
        journal.Writer.Checkpointed += h =>
        {
            var now = time.GetTimestamp();
            if (lastLogged == long.MinValue || time.GetElapsedTime(lastLogged, now) >= HeadLogInterval)
            {
                lastLogged = now;
                LogHead(logger, h.Sequence, Convert.ToHexStringLower(h.Hash), h.CheckpointSequence, Convert.ToBase64String(h.Signature));
            }
        };
        return journal;
    }

    [LoggerMessage(EventId = 20, Level = LogLevel.Information, Message = "Journal checkpoints are signed by the public key {PublicKey} (SPKI, base64): pin it for 'medserve audit verify --public-key'")]
    private static partial void LogPublicKey(ILogger logger, string publicKey);

    [LoggerMessage(EventId = 21, Level = LogLevel.Warning, Message = "The journal signing key is in the data dir (secrets/audit-signing.pem): whoever can write the data dir can re-sign a rewritten journal. Give it from outside with MedServe:Journal:SigningKeyPath or MEDSERVE_JOURNAL__SIGNING_KEY")]
    private static partial void LogKeyInDataDir(ILogger logger);

    [LoggerMessage(EventId = 22, Level = LogLevel.Warning, Message = "The journal anchor is in the data dir: a truncation by someone who can write the data dir is caught only against the head in this log. Set MedServe:Journal:AnchorPath to another volume or owner")]
    private static partial void LogAnchorInDataDir(ILogger logger);

    [LoggerMessage(EventId = 23, Level = LogLevel.Critical, Message = "The journal failed its checks at start, so audited routes are refused and readiness is false: {Reason}")]
    private static partial void LogRefusing(ILogger logger, string reason);

    [LoggerMessage(EventId = 24, Level = LogLevel.Information, Message = "Journal head: record {Sequence} hash {Hash}; signed checkpoint after record {Checkpoint}, signature {Signature} (keep these lines: 'medserve audit verify --head' checks a journal against them)")]
    private static partial void LogHead(ILogger logger, long sequence, string hash, long checkpoint, string signature);

    [LoggerMessage(EventId = 25, Level = LogLevel.Warning, Message = "Imported {Records} records from audit.db into the journal ({Verdict}); audit.db is kept as audit.db.migrated")]
    private static partial void LogImported(ILogger logger, long records, string verdict);
}
