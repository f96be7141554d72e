using System.Security.Claims;
using MedServe.Compliance.Audit;
using MedServe.Compliance.Encryption;
using MedServe.Compliance.Journal;
using Microsoft.Extensions.Options;

namespace MedServe.Security;

/// <summary>
/// Turns a finished request into its journal record. The patient identifier becomes a pseudonym
/// here and goes no further; an inference's inputs and outputs are encrypted here, on the request's
/// thread (spread over the cores, not on the one writer), bound to the request id.
/// </summary>
public sealed partial class AuditTrail(IServiceProvider services, Pseudonymizer pseudonyms, EnvelopeEncryption envelopes, TimeProvider time, IOptions<Hosting.ServerOptions> options, ILogger<AuditTrail> logger)
{
    private AuditJournal? _journal;

    public bool Enabled { get; } = options.Value.Audit.Enabled;

    /// <summary>Opened at the first use, so a server with auditing off never creates one.</summary>
    public AuditJournal Journal => _journal ??= services.GetRequiredService<AuditJournal>();

    /// <summary>
    /// Why an audited request must be refused before it starts, or null: the journal cannot write
    /// (readiness is false too), or its queue is full (back-pressure, 503 with Retry-After).
    /// </summary>
    public string? Unavailable(out bool full)
    {
        full = false;
        if (Journal.Failure is { } failure)
        {
            return "the audit journal cannot write, so audited requests are refused: " + MedServe.Files.ServerPaths.Scrub(failure);
        }

        full = Journal.Writer?.IsFull == true;
        return full ? "the audit journal's queue is full; retry shortly" : null;
    }

    public static string Actor(ClaimsPrincipal user) =>
        user.Identity is { IsAuthenticated: true, Name: { } name } ? name : "anonymous";

    /// <summary>
    /// Completes once the record is durable. Throws when it cannot be written and the trail fails
    /// closed (<see cref="JournalFullException"/> when the journal's queue is full: answer 503).
    /// </summary>
    public Task RecordAsync(ClaimsPrincipal user, string action, string resource, string outcome, string requestId, string client, string? patientId, AuditDetails? details = null) =>
        Append(Entry(user, action, resource, outcome, requestId, client, patientId, details, JournalKind.Action), action, requestId);

    /// <summary>
    /// A refused request (a bad credential, a missing scope): journaled, but its answer does not
    /// wait for the record to be durable, so a flood of bad credentials costs no fsync each.
    /// </summary>
    public void RecordRefusal(ClaimsPrincipal user, string action, string resource, string outcome, string requestId, string client)
    {
        var append = Journal.AppendAsync(Entry(user, action, resource, outcome, requestId, client, null, null, JournalKind.Refusal));
        if (!append.IsCompletedSuccessfully)
        {
            _ = append.ContinueWith(
                static (task, state) =>
                {
                    var (log, action, requestId) = ((ILogger, string, string))state!;
                    LogRefusalNotRecorded(log, action, requestId, task.Exception!.InnerException!.Message);
                },
                (logger, action, requestId), CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    /// <summary>Appends a record built by its feature (an outcome); durable on completion, failing closed as every audited record.</summary>
    public Task AppendAsync(JournalEntry entry) => Append(entry, entry.Action, entry.RequestId);

    /// <summary>An action the server takes by itself (loading the repository at start): actor <c>system</c>.</summary>
    public Task RecordSystemAsync(string action, string resource, string outcome) =>
        Enabled ? RecordAsync(SystemActor, action, resource, outcome, AuditMiddleware.NewRequestId(), "", null) : Task.CompletedTask;

    /// <summary>The record, built once: an action's fields, and an inference's model, version, client id, latency and encrypted payload.</summary>
    private JournalEntry Entry(ClaimsPrincipal user, string action, string resource, string outcome, string requestId, string client, string? patientId, AuditDetails? details, JournalKind kind)
    {
        var pseudonym = string.IsNullOrEmpty(patientId) ? "" : pseudonyms.Pseudonym(patientId);
        var inference = details?.Model is not null;
        return new JournalEntry(time.GetUtcNow(), inference ? JournalKind.Inference : kind, Actor(user), action, resource, outcome, requestId, client, pseudonym)
        {
            LatencyMicroseconds = details is { StartTimestamp: not 0 } ? (long)time.GetElapsedTime(details.StartTimestamp).TotalMicroseconds : 0,
            Model = details?.Model ?? "",
            Version = inference ? details!.Version.ToString(System.Globalization.CultureInfo.InvariantCulture) : "",
            ClientRequestId = details?.ClientRequestId ?? "",

            // Bound to the request id: an envelope moved into another record does not decrypt.
            Payload = details?.Prediction is { } prediction ? envelopes.EncryptRecord(prediction, System.Text.Encoding.UTF8.GetBytes(requestId)) : default,
        };
    }

    private async Task Append(JournalEntry entry, string action, string requestId)
    {
        using var span = MedServe.Diagnostics.Telemetry.Source.StartActivity("medserve.journal.append");
        span?.SetTag("medserve.request_id", requestId);
        span?.SetTag("medserve.journal.kind", entry.Kind.ToString());
        try
        {
            await Journal.AppendAsync(entry).ConfigureAwait(false);
        }
        catch (Exception e) when (e is JournalUnavailableException or JournalFullException)
        {
            if (options.Value.Audit.FailClosed)
            {
                // The caller gets a bare 500 (or 503 for a full queue); the operator gets the reason here.
                LogRefused(logger, action, requestId, e.Message);
                throw;
            }

            LogNotRecorded(logger, action, requestId, e.Message);
        }
    }

    private static readonly ClaimsPrincipal SystemActor = new(new ClaimsIdentity([new Claim(ClaimTypes.Name, "system")], "medserve"));

    [LoggerMessage(Level = LogLevel.Error, Message = "Journal record for {Action} (request {RequestId}) was NOT written, so the request was refused (Audit:FailClosed): {Reason}")]
    private static partial void LogRefused(ILogger logger, string action, string requestId, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Journal record for {Action} (request {RequestId}) was NOT written and the request was answered (Audit:FailClosed is false): {Reason}")]
    private static partial void LogNotRecorded(ILogger logger, string action, string requestId, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Journal record of the refused request {Action} (request {RequestId}) was NOT written: {Reason}")]
    private static partial void LogRefusalNotRecorded(ILogger logger, string action, string requestId, string reason);
}
