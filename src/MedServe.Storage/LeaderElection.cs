using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace MedServe.Storage;

/// <summary>
/// Which replica runs each shared control loop (the rollout controller, alert evaluation): with
/// PostgreSQL, the one holding the loop's session advisory lock on a connection kept open for it.
/// A replica that dies closes its connection, PostgreSQL releases its locks, and another replica
/// takes them at its next try (every <see cref="StoreOptions.LeaderRetryInterval"/>). With SQLite
/// the one process owning the data dir leads every loop.
/// </summary>
public sealed class LeaderElection(ILogger<LeaderElection> logger) : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, bool> _loops = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private NpgsqlDataSource? _source;
    private Task _campaign = Task.CompletedTask;

    /// <summary>Whether this replica runs <paramref name="loop"/> now (always true on SQLite).</summary>
    public bool Leads(string loop) => _source is null || (_loops.TryGetValue(loop, out var held) && held);

    /// <summary>Declares a loop this replica is willing to lead.</summary>
    public void Register(string loop) => _loops.TryAdd(loop, false);

    public event Action<string, bool>? LeadershipChanged;

    /// <summary>Starts campaigning for every registered loop (PostgreSQL); nothing to do for SQLite.</summary>
    public void Start(Database database, TimeSpan retryInterval)
    {
        if (database.Postgres is not { } source)
        {
            return;
        }

        _source = source;
        _campaign = Task.Run(() => CampaignAsync(source, retryInterval, _stop.Token));
    }

    private async Task CampaignAsync(NpgsqlDataSource source, TimeSpan interval, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(interval);
        NpgsqlConnection? connection = null;
        try
        {
            do
            {
                try
                {
                    // One session holds every lock this replica has; if it breaks, all are lost together.
                    if (connection is null)
                    {
                        connection = await source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                    }

                    foreach (var loop in _loops.Keys)
                    {
                        if (_loops[loop])
                        {
                            continue;
                        }

                        await using var take = new NpgsqlCommand("SELECT pg_try_advisory_lock(hashtext(@loop));", connection);
                        take.Parameters.AddWithValue("loop", "medserve:" + loop);
                        if (await take.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is true)
                        {
                            Set(loop, true);
                        }
                    }

                    // A cheap round trip: a dead session shows here, not when a loop acts on stale leadership.
                    await using var alive = new NpgsqlCommand("SELECT 1;", connection);
                    await alive.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
                {
                    logger.LogWarning("Leader election lost its PostgreSQL session ({Error}); this replica leads no loop until it reconnects", e.Message);
                    foreach (var loop in _loops.Keys)
                    {
                        Set(loop, false);
                    }

                    if (connection is not null)
                    {
                        await connection.DisposeAsync().ConfigureAwait(false);
                        connection = null;
                    }
                }
            }
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            foreach (var loop in _loops.Keys)
            {
                Set(loop, false);
            }

            // Released now, not when the pool resets this connection on its next use: another replica takes over at its next try.
            if (connection is not null)
            {
                try
                {
                    await using var release = new NpgsqlCommand("SELECT pg_advisory_unlock_all();", connection);
                    await release.ExecuteNonQueryAsync(CancellationToken.None).ConfigureAwait(false);
                }
                catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
                {
                    // The session is gone, and its locks with it.
                }

                await connection.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private void Set(string loop, bool leads)
    {
        if (_loops.TryGetValue(loop, out var before) && before == leads)
        {
            return;
        }

        _loops[loop] = leads;
        logger.LogInformation(leads ? "This replica now leads the {Loop} loop" : "This replica no longer leads the {Loop} loop", loop);
        LeadershipChanged?.Invoke(loop, leads);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _campaign.ConfigureAwait(false);
    }
}
