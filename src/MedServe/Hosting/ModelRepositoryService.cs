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
    ModelManager models, IRegistryStore registry, ServingReconciler reconciler, IOptions<ServerOptions> options, ILogger<ModelRepositoryService> logger) : BackgroundService
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
}
