using MedServe.Compliance.Journal;
using MedServe.Hosting;
using MedServe.Storage;
using Microsoft.Extensions.Options;

namespace MedServe.Security;

/// <summary>
/// With a shared PostgreSQL: copies this replica's journal head there every
/// <c>Journal:HeadPublishInterval</c> and once more at shutdown, so <c>medserve audit
/// verify-replicas</c> knows every replica and how far its chain must reach (see
/// <see cref="SharedJournalHeads"/>). Every replica publishes its own head: no leader is needed.
/// </summary>
public sealed partial class JournalHeadPublisher(AuditTrail trail, StoreDatabases databases, IOptions<ServerOptions> options, TimeProvider time,
    ILogger<JournalHeadPublisher> logger) : BackgroundService
{
    private SharedJournalHeads? _heads;
    private string? _replica;
    private string? _publicKey;
    private JournalHead? _published;
    private bool _failing;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!trail.Enabled || databases.Provider != StoreProvider.Postgres || trail.Journal.Writer is null)
        {
            return;
        }

        _replica = ReplicaIdentity.Of(options.Value.ResolvedDataDir);
        _publicKey = Convert.ToBase64String(trail.Journal.PublicKey.ExportSubjectPublicKeyInfo());
        using var timer = new PeriodicTimer(options.Value.Journal.HeadPublishInterval, time);
        try
        {
            do
            {
                await PublishAsync(stoppingToken).ConfigureAwait(false);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);

        // The last head, so an audit after a clean stop expects every record this replica wrote.
        if (_replica is not null)
        {
            await PublishAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task PublishAsync(CancellationToken cancellationToken)
    {
        if (trail.Journal.Writer?.Head is not { } head || ReferenceEquals(head, _published))
        {
            return;
        }

        try
        {
            _heads ??= await SharedJournalHeads.OpenAsync(databases.For("predictions.db"), time, cancellationToken).ConfigureAwait(false);
            await _heads.PublishAsync(_replica!, _publicKey!, head, time.GetUtcNow(), cancellationToken).ConfigureAwait(false);
            _published = head;
            if (_failing)
            {
                _failing = false;
                LogRecovered(logger);
            }
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or TimeoutException or StoreException)
        {
            if (!_failing)
            {
                _failing = true;
                LogFailed(logger, e.GetType().Name);
            }
        }
    }

    [LoggerMessage(EventId = 35, Level = LogLevel.Warning, Message = "Publishing the journal head to the shared PostgreSQL failed ({Kind}); retried every interval. The journal itself is unaffected")]
    private static partial void LogFailed(ILogger logger, string kind);

    [LoggerMessage(EventId = 36, Level = LogLevel.Information, Message = "Publishing the journal head to the shared PostgreSQL works again")]
    private static partial void LogRecovered(ILogger logger);
}
