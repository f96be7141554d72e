using MedServe.Lifecycle;
using MedServe.Registry.Serving;
using MedServe.Registry.Store;
using MedServe.Samples;
using Microsoft.Extensions.Options;

namespace MedServe.Hosting;

/// <summary>
/// Brings the repository up in the background once the server listens: provisions the samples
/// into a repository that does not exist yet, then loads every model. Until then the server
/// is live but not ready.
/// </summary>
internal sealed partial class ModelRepositoryService(
    ModelManager models, IRegistryStore registry, ServingReconciler reconciler, Security.AuditTrail audit, IOptions<ServerOptions> options, ILogger<ModelRepositoryService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var repository = options.Value.ResolvedModelRepository;
        if (options.Value.ProvisionSamples && !Directory.Exists(repository))
        {
            LogProvisioning(repository);
            await Task.Run(() => SampleModels.Provision(repository, logger), stoppingToken).ConfigureAwait(false);

            // Training and the ResNet rewrite leave a large, dead managed heap: give it back once.
            GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        }

        await models.LoadAllAsync(stoppingToken).ConfigureAwait(false);

        // Registered models: route each to the version its serving alias names.
        foreach (var model in await registry.ListModelsAsync(stoppingToken).ConfigureAwait(false))
        {
            await reconciler.ReconcileAsync(model.Name, stoppingToken).ConfigureAwait(false);
        }

        // Loading the repository is a configuration load like any other: one record per model version, actor "system".
        foreach (var entry in models.Index(readyOnly: false))
        {
            var resource = entry.Version is { } version ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{entry.Name}/{version}") : entry.Name;
            try
            {
                await audit.RecordSystemAsync("startup load", resource, entry.State?.ToString().ToUpperInvariant() ?? "UNKNOWN").ConfigureAwait(false);
            }
            catch (Exception e) when (e is MedServe.Compliance.Journal.JournalUnavailableException or MedServe.Compliance.Journal.JournalFullException)
            {
                // The server keeps running: with a broken journal every audited request is refused anyway, and readiness is false.
                LogStartupNotAudited(resource, e.Message);
            }
        }

        NativeMemory.Trim();
        LogReady(models.ReadyVersions().Count);
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        await models.DisposeAsync().ConfigureAwait(false);
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Model repository {Repository} is new: writing the sample models")]
    private partial void LogProvisioning(string repository);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Ready: {Count} model version(s) loaded")]
    private partial void LogReady(int count);

    [LoggerMessage(EventId = 3, Level = LogLevel.Error, Message = "The start-up load of {Resource} could not be audited: {Reason}")]
    private partial void LogStartupNotAudited(string resource, string reason);
}
