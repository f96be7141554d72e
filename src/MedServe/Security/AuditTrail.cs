using System.Security.Claims;
using MedServe.Compliance.Audit;
using Microsoft.Extensions.Options;

namespace MedServe.Security;

/// <summary>
/// Turns a finished request into an audit record and waits for it to be durable. The patient
/// identifier becomes a pseudonym here and goes no further.
/// </summary>
public sealed partial class AuditTrail(IAuditStore log, Pseudonymizer pseudonyms, TimeProvider time, IOptions<Hosting.ServerOptions> options, ILogger<AuditTrail> logger)
{
    public bool Enabled { get; } = options.Value.Audit.Enabled;

    public static string Actor(ClaimsPrincipal user) =>
        user.Identity is { IsAuthenticated: true, Name: { } name } ? name : "anonymous";

    /// <summary>Completes once the record is on disk. Throws when it cannot be written and the trail fails closed.</summary>
    public async Task RecordAsync(ClaimsPrincipal user, string action, string resource, string outcome, string requestId, string client, string? patientId)
    {
        var record = new AuditEvent(time.GetUtcNow(), Actor(user), action, resource, outcome, requestId, client,
            string.IsNullOrEmpty(patientId) ? "" : pseudonyms.Pseudonym(patientId));
        try
        {
            await log.AppendAsync(record).ConfigureAwait(false);
        }
        catch (InvalidOperationException e)
        {
            if (options.Value.Audit.FailClosed)
            {
                // The caller gets a bare 500; the operator gets the store's reason here, since logged exceptions lose their messages.
                LogRefused(logger, action, requestId, e.Message);
                throw;
            }

            LogNotRecorded(logger, action, requestId, e.Message);
        }
    }

    /// <summary>An action the server takes by itself (loading the repository at start): actor <c>system</c>.</summary>
    public Task RecordSystemAsync(string action, string resource, string outcome) =>
        Enabled ? RecordAsync(SystemActor, action, resource, outcome, AuditMiddleware.NewRequestId(), "", null) : Task.CompletedTask;

    private static readonly ClaimsPrincipal SystemActor = new(new ClaimsIdentity([new Claim(ClaimTypes.Name, "system")], "medserve"));

    [LoggerMessage(Level = LogLevel.Error, Message = "Audit record for {Action} (request {RequestId}) was NOT written, so the request was refused (Audit:FailClosed): {Reason}")]
    private static partial void LogRefused(ILogger logger, string action, string requestId, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Audit record for {Action} (request {RequestId}) was NOT written and the request was answered (Audit:FailClosed is false): {Reason}")]
    private static partial void LogNotRecorded(ILogger logger, string action, string requestId, string reason);
}
