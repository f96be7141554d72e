using MedServe.Compliance.Access;
using MedServe.Lifecycle;
using MedServe.Registry.Serving;
using MedServe.Registry.Store;
using MedServe.Storage;

namespace MedServe.Hosting;

/// <summary>
/// Keeps a replica in step with the others sharing its PostgreSQL: a registry change (an alias,
/// a stage, a monitoring spec) reconciles what it serves, an experiment change reloads the
/// router's table, a key change forgets the keys it remembered; and it campaigns to lead the
/// shared control loops. With SQLite there is one process and nothing to follow.
/// </summary>
public sealed partial class SharedStateService(StoreDatabases databases, ChangeFeed changes, LeaderElection leaders, IServiceProvider services,
    Microsoft.Extensions.Options.IOptions<ServerOptions> options, ILogger<SharedStateService> logger) : IHostedService, MedServe.Diagnostics.IMetricsContributor
{
    /// <summary>The control loops exactly one replica runs.</summary>
    public static readonly string[] Loops = [Experiments.RolloutController.Loop, Alerts.AlertEvaluator.Loop, Predictions.PredictionRetentionService.Loop];

    public Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var loop in Loops)
        {
            leaders.Register(loop);
        }

        if (databases.Provider != StoreProvider.Postgres)
        {
            return Task.CompletedTask;
        }

        changes.Subscribe(RegistryStore.ChangeTopic, ReconcileAllAsync);
        changes.Subscribe(Experiments.ExperimentStore.ChangeTopic, ct => services.GetRequiredService<Experiments.ExperimentService>().LoadAsync(ct));
        changes.Subscribe(ApiKeyStore.ChangeTopic, _ =>
        {
            services.GetRequiredService<ApiKeyStore>().Forget();
            return Task.CompletedTask;
        });
        var store = options.Value.Store;
        changes.Start(databases.Coordination, store.ChangePollInterval, store.Notifications, services.GetService<SharedRedis>());
        leaders.Start(databases.Coordination, store.LeaderRetryInterval);
        LogFollowing(logger, store.Notifications, changes.Replica);
        return Task.CompletedTask;
    }

    /// <summary>Every model the registry names, and every one it managed here (a deletion unloads it).</summary>
    private async Task ReconcileAllAsync(CancellationToken cancellationToken)
    {
        var registry = services.GetRequiredService<IRegistryStore>();
        var models = services.GetRequiredService<ModelManager>();
        var reconciler = services.GetRequiredService<ServingReconciler>();
        var names = (await registry.ListModelsAsync(cancellationToken).ConfigureAwait(false)).Select(m => m.Name)
            .Concat(models.Index(readyOnly: false).Select(e => e.Name).Where(models.IsManaged))
            .Distinct(StringComparer.Ordinal);
        await Task.WhenAll(names.Select(reconciler.Request)).ConfigureAwait(false);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // Leadership goes first, so another replica takes the loops while this one drains.
        await leaders.DisposeAsync().ConfigureAwait(false);
        await changes.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Which loops this replica leads, and how many changes it heard from the others: for dashboards and the failover runbook.</summary>
    public void Write(System.Text.StringBuilder text)
    {
        text.Append("# HELP medserve_leader Whether this replica runs the control loop (1) or stands by (0)\n# TYPE medserve_leader gauge\n");
        foreach (var loop in Loops)
        {
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"medserve_leader{{loop=\"{loop}\"}} {(leaders.Leads(loop) ? 1 : 0)}\n");
        }

        text.Append("# HELP medserve_store_changes_heard_total Changes made on other replicas that this one re-read\n# TYPE medserve_store_changes_heard_total counter\n");
        text.Append(System.Globalization.CultureInfo.InvariantCulture, $"medserve_store_changes_heard_total {changes.Heard}\n");
        if (services.GetService<SharedRedis>() is { } redis)
        {
            text.Append("# HELP medserve_redis_up Whether the shared Redis (rate limits, change notifications) answers (1) or each replica counts alone (0)\n# TYPE medserve_redis_up gauge\n");
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"medserve_redis_up {(redis.Up ? 1 : 0)}\n");
            text.Append("# HELP medserve_rate_limit_local_total Rate-limit decisions made by this replica alone because Redis could not be used\n# TYPE medserve_rate_limit_local_total counter\n");
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"medserve_rate_limit_local_total {redis.LocalDecisions}\n");
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Following the other replicas' changes ({Notifications} notifications, counters polled) as replica {Replica}")]
    private static partial void LogFollowing(ILogger logger, ChangeNotifications notifications, string replica);
}
