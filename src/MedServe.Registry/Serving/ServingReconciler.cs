using System.Globalization;
using System.Text.Json;
using MedServe.Inference;
using MedServe.Lifecycle;
using MedServe.Registry.Artifacts;
using MedServe.Registry.Store;
using Microsoft.Extensions.Logging;

namespace MedServe.Registry.Serving;

/// <summary>Where intent and reality stand for one model: the version the serving alias names, and the one that serves.</summary>
public sealed record ServingStatus(string Model, long? Intended, long? Serving, string? Reason)
{
    /// <summary>Serving what is intended, with nothing left to explain.</summary>
    public bool Converged => Intended == Serving && Reason is null;

    /// <summary>A pass is running or queued for this model now (the status shows the last one finished).</summary>
    public bool Reconciling { get; init; }
}

/// <summary>
/// Reconciles what the server serves toward what the registry intends, like a Kubernetes
/// controller: the serving alias (champion) names a version; the reconciler materializes the
/// aliased versions into the model repository, loads the intended one beside the current one,
/// warms it up, switches routing atomically, then unloads what no alias names once it drains.
/// A version that fails leaves the previous one serving, and the status says why.
/// Passes run in the background, one at a time per model (a slow load of one model holds no
/// other), with the server's lifetime rather than a request's: a caller that goes away stops
/// waiting, never the swap. A pass is level-triggered (it reads the aliases as they are when it
/// starts, so triggers that arrive meanwhile share the next pass), and one that ends short of
/// what is intended is retried with back-off (1 s doubling to 60 s) until it converges.
/// </summary>
public sealed partial class ServingReconciler(
    IRegistryStore store, ArtifactStore artifacts, ModelManager models, ILogger<ServingReconciler>? logger = null, string servingAlias = "champion", TimeProvider? time = null)
    : IDisposable
{
    private static readonly TimeSpan MaxBackOff = TimeSpan.FromSeconds(60);
    private readonly Dictionary<string, ServingStatus> _status = new(StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ModelLoop> _loops = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    public string ServingAlias { get; } = servingAlias;

    public ServingStatus Status(string model)
    {
        var reconciling = _loops.TryGetValue(model, out var loop) && loop.Busy;
        lock (_status)
        {
            var status = _status.TryGetValue(model, out var known) ? known : new ServingStatus(model, null, models.ServingVersion(model), null);
            return status with { Reconciling = reconciling };
        }
    }

    /// <summary>
    /// Asks for a pass over one model and waits for it; <paramref name="cancellationToken"/> ends
    /// the wait only, not the pass.
    /// </summary>
    public Task<ServingStatus> ReconcileAsync(string model, CancellationToken cancellationToken = default) =>
        Request(model).WaitAsync(cancellationToken);

    /// <summary>Queues a pass over one model (or joins the one queued and not started yet); completes with where it ends up.</summary>
    public Task<ServingStatus> Request(string model)
    {
        var loop = _loops.GetOrAdd(model, _ => new ModelLoop());
        lock (loop)
        {
            if (loop.Next is { } queued)
            {
                return queued.Task;
            }

            var next = new TaskCompletionSource<ServingStatus>(TaskCreationOptions.RunContinuationsAsynchronously);
            loop.Next = next;
            _ = Task.Run(() => RunAsync(model, loop));
            return next.Task;
        }
    }

    public void Dispose()
    {
        _stopping.Cancel();
        foreach (var loop in _loops.Values)
        {
            loop.Retry?.Dispose();
        }

        _stopping.Dispose();
    }

    private async Task RunAsync(string model, ModelLoop loop)
    {
        TaskCompletionSource<ServingStatus> mine;
        try
        {
            await loop.Gate.WaitAsync(_stopping.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            lock (loop)
            {
                loop.Next?.TrySetCanceled();
                loop.Next = null;
            }

            return;
        }

        lock (loop)
        {
            // Later triggers queue a pass of their own, which reads the aliases after them.
            mine = loop.Next!;
            loop.Next = null;
        }

        try
        {
            var status = await ReconcileOnceAsync(model, _stopping.Token).ConfigureAwait(false);
            ScheduleRetry(model, loop, status);
            mine.TrySetResult(status);
        }
        catch (Exception e)
        {
            ScheduleRetry(model, loop, null);
            mine.TrySetException(e);
        }
        finally
        {
            loop.Gate.Release();
        }
    }

    /// <summary>Short of what is intended (or failed): try again later, backing off; converged: reset.</summary>
    private void ScheduleRetry(string model, ModelLoop loop, ServingStatus? status)
    {
        lock (loop)
        {
            loop.Retry?.Dispose();
            loop.Retry = null;
            if (status is not null && (status.Converged || status.Intended is null) || _stopping.IsCancellationRequested)
            {
                loop.Failures = 0;
                return;
            }

            var delay = TimeSpan.FromSeconds(Math.Min(MaxBackOff.TotalSeconds, Math.Pow(2, loop.Failures)));
            loop.Failures++;
            loop.Retry = _time.CreateTimer(_ => Request(model), null, delay, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>One model's pass state: its gate, the pass queued, the retry timer.</summary>
    private sealed class ModelLoop
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);

        public TaskCompletionSource<ServingStatus>? Next { get; set; }

        public ITimer? Retry { get; set; }

        public int Failures { get; set; }

        public bool Busy => Gate.CurrentCount == 0 || Next is not null;
    }

    /// <summary>Brings one model's serving in line with its aliases; returns where it ends up.</summary>
    private async Task<ServingStatus> ReconcileOnceAsync(string model, CancellationToken cancellationToken)
    {
        {
            var registered = await store.GetModelAsync(model, cancellationToken).ConfigureAwait(false) is not null;
            if (!registered && models.IsManaged(model))
            {
                // Deleted from the registry: it serves no more, and its materialized folder goes, so a restart does not bring it back.
                models.SetManagedBy(model, null);
                await models.UnloadAsync(model, asManager: true, cancellationToken).ConfigureAwait(false);
                var folder = Path.Combine(models.RepositoryPath, model);
                if (Directory.Exists(folder))
                {
                    Directory.Delete(folder, recursive: true);
                }

                return Record(new ServingStatus(model, null, null, null));
            }

            if (!registered)
            {
                return Record(new ServingStatus(model, null, models.ServingVersion(model), "not in the registry"));
            }

            models.SetManagedBy(model, "the model registry");
            var aliases = await store.GetAliasesAsync(model, cancellationToken).ConfigureAwait(false);
            long? intended = aliases.TryGetValue(ServingAlias, out var v) ? v : null;
            var current = models.ServingVersion(model);
            // Loaded: what an alias names, and (MLflow's meaning) what is in the Staging or Production stage.
            var staged = (await store.ListVersionsAsync(model, cancellationToken).ConfigureAwait(false))
                .Where(r => r.Stage is "Staging" or "Production").Select(r => r.Version);
            var wanted = aliases.Values.Concat(staged).Distinct().Order().ToList();
            if (wanted.Count == 0)
            {
                return Record(new ServingStatus(model, null, current, "no alias or stage names a version"));
            }

            // 1. The aliased versions load beside the one serving now.
            try
            {
                await MaterializeAsync(model, wanted, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is RegistryException or InvalidDataException or IOException)
            {
                return Record(new ServingStatus(model, intended, current, e.Message));
            }

            var during = current is { } c && !wanted.Contains(c) ? [.. wanted, c] : wanted;
            var failure = await LoadAsync(model, during, cancellationToken).ConfigureAwait(false);

            // 2. The intended version must answer a warm-up request before it takes traffic.
            if (intended is { } target && current != target)
            {
                failure ??= await models.WarmUpAsync(model, target, cancellationToken).ConfigureAwait(false);
                if (failure is not null)
                {
                    // Keep serving what served; drop the failed version from the loaded set.
                    if (current is { } keep)
                    {
                        await LoadAsync(model, wanted.Where(w => w != target).Append(keep).Distinct().Order().ToList(), cancellationToken).ConfigureAwait(false);
                        await models.SetServingVersionAsync(model, keep, cancellationToken).ConfigureAwait(false);
                    }
                    else
                    {
                        // Nothing served before: the version that failed its warm-up must not take traffic by default.
                        var others = wanted.Where(w => w != target).ToList();
                        if (others.Count == 0)
                        {
                            await models.UnloadAsync(model, asManager: true, cancellationToken).ConfigureAwait(false);
                        }
                        else
                        {
                            await LoadAsync(model, others, cancellationToken).ConfigureAwait(false);
                        }
                    }

                    return Record(new ServingStatus(model, intended, models.ServingVersion(model), $"version {target} not served: {failure}"));
                }

                // 3. One atomic switch; requests already routed finish on the old version.
                await models.SetServingVersionAsync(model, target, cancellationToken).ConfigureAwait(false);
            }

            // 4. What no alias names unloads once its requests drain.
            failure = await LoadAsync(model, wanted, cancellationToken).ConfigureAwait(false);
            return Record(new ServingStatus(model, intended, models.ServingVersion(model), failure));
        }
    }

    /// <summary>Points the serving alias back at the version it named before, and reconciles.</summary>
    public async Task<ServingStatus> RollbackAsync(string model, string changedBy, string reason, CancellationToken cancellationToken = default)
    {
        var history = await store.GetAliasHistoryAsync(model, cancellationToken).ConfigureAwait(false);
        var last = history.LastOrDefault(h => h.Alias == ServingAlias && h.To is not null && h.From is not null && h.From != h.To)
            ?? throw new RegistryException(RegistryError.Invalid, $"model '{model}' has no earlier '{ServingAlias}' version to roll back to");
        await store.SetAliasAsync(model, ServingAlias, last.From, changedBy, "rollback: " + reason, cancellationToken).ConfigureAwait(false);
        return await ReconcileAsync(model, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes each version's verified artifact into &lt;repository&gt;/&lt;model&gt;/&lt;version&gt;/model.onnx once.</summary>
    private async Task MaterializeAsync(string model, IEnumerable<long> versions, CancellationToken cancellationToken)
    {
        foreach (var version in versions)
        {
            var target = Path.Combine(models.RepositoryPath, model, version.ToString(CultureInfo.InvariantCulture), "model.onnx");
            if (File.Exists(target))
            {
                continue;
            }

            var record = await store.GetVersionAsync(model, version, cancellationToken).ConfigureAwait(false)
                ?? throw new RegistryException(RegistryError.NotFound, $"model '{model}' has no version {version}");
            if (!record.Servable)
            {
                throw new RegistryException(RegistryError.Invalid, $"model '{model}' version {version} cannot be served: {record.UnservableReason}");
            }

            var source = await artifacts.OpenVerifiedAsync(record.ArtifactSha256, cancellationToken).ConfigureAwait(false);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(source, target + ".tmp", overwrite: true);
            File.Move(target + ".tmp", target, overwrite: true);
        }
    }

    /// <summary>Loads exactly these versions (a config.json with a specific version policy); returns why not, or null.</summary>
    private async Task<string?> LoadAsync(string model, IReadOnlyList<long> versions, CancellationToken cancellationToken)
    {
        // The monitoring spec in force travels in the config, so a new revision reaches the served versions as any config change does.
        var monitoring = (await store.GetMonitoringHistoryAsync(model, cancellationToken).ConfigureAwait(false)).LastOrDefault()?.Spec;
        var config = JsonSerializer.Serialize(new
        {
            name = model,
            platform = "onnxruntime_onnx",
            version_policy = new { specific = new { versions } },
            monitoring = monitoring is null ? (JsonElement?)null : JsonDocument.Parse(monitoring).RootElement,
        }, new JsonSerializerOptions { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull });
        // Written beside and renamed over: the manager never reads a half-written config.
        var path = Path.Combine(models.RepositoryPath, model, "config.json");
        await File.WriteAllTextAsync(path + ".tmp", config, cancellationToken).ConfigureAwait(false);
        File.Move(path + ".tmp", path, overwrite: true);
        try
        {
            await models.LoadAsync(model, null, reuseUnchanged: true, cancellationToken).ConfigureAwait(false);
            return null;
        }
        catch (InferenceException e)
        {
            return e.Message;
        }
    }

    private ServingStatus Record(ServingStatus status)
    {
        lock (_status)
        {
            _status[status.Model] = status;
        }

        if (logger is not null)
        {
            if (status.Converged)
            {
                LogConverged(logger, status.Model, status.Serving);
            }
            else
            {
                LogDiverged(logger, status.Model, status.Intended, status.Serving, status.Reason ?? "");
            }
        }

        return status;
    }

    [LoggerMessage(EventId = 400, Level = LogLevel.Information, Message = "Model {Model} serves version {Serving}, as the registry intends")]
    private static partial void LogConverged(ILogger logger, string model, long? serving);

    [LoggerMessage(EventId = 401, Level = LogLevel.Warning, Message = "Model {Model}: the registry intends version {Intended}, version {Serving} serves: {Reason}")]
    private static partial void LogDiverged(ILogger logger, string model, long? intended, long? serving, string reason);
}
