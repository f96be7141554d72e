using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Globalization;
using MedServe.Backends;
using MedServe.Inference;
using MedServe.Repository;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MedServe.Lifecycle;

/// <summary>
/// Owns every model the server knows: loads what the repository holds, reloads and unloads on
/// request while traffic flows, and resolves requests to a ready version. Each model's state is
/// an immutable snapshot swapped atomically; loads and unloads of one model are serialized, and
/// a failure stays with its model.
/// </summary>
public sealed partial class ModelManager : IAsyncDisposable
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _managed = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ModelEntry> _models = new(StringComparer.Ordinal);
    private readonly IReadOnlyList<IModelBackend> _backends;
    private readonly ModelRepositoryOptions _options;
    private readonly ILogger<ModelManager> _logger;
    private readonly TimeProvider _time;
    private readonly bool _histograms;
    private readonly TaskCompletionSource _startupLoaded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _ready;
    private volatile bool _stopping;

    public ModelManager(
        IOptions<ModelRepositoryOptions> options, IOptions<Statistics.MetricsOptions> metrics, IEnumerable<IModelBackend> backends, ILogger<ModelManager> logger, TimeProvider time)
    {
        _options = options.Value;
        _histograms = metrics.Value.Histograms;
        _backends = backends.ToList();
        _logger = logger;
        _time = time;
    }

    public string RepositoryPath => _options.Path;

    /// <summary>True once the startup load has finished, until shutdown begins.</summary>
    public bool IsReady => _ready && !_stopping;

    /// <summary>Completes when the startup load has finished.</summary>
    public Task WhenReady => _startupLoaded.Task;

    /// <summary>Loads every model in the repository. A model that fails is recorded with its reason.</summary>
    public async Task LoadAllAsync(CancellationToken cancellationToken = default)
    {
        foreach (var name in RepositoryScanner.ListModels(_options.Path))
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!ModelNames.IsValid(name))
            {
                // Not servable, and not addressable by a scope: say so rather than skip it silently.
                LogInvalidName(ModelNames.Quote(name), ModelNames.Grammar);
                continue;
            }

            try
            {
                await LoadAsync(name, null, cancellationToken).ConfigureAwait(false);
            }
            catch (InferenceException)
            {
                // Recorded in the model's snapshot and logged; the other models go on.
            }
        }

        _ready = true;
        _startupLoaded.TrySetResult();
    }

    /// <summary>
    /// Loads (or reloads) a model. New versions load beside the serving ones and replace them
    /// atomically; a version that fails to reload keeps serving its old instances.
    /// </summary>
    /// <remarks>The repository API's load (REST and gRPC): refused for a model another component manages (the registry's reconciler).</remarks>
    public Task LoadAsync(string name, string? configOverrideJson, CancellationToken cancellationToken = default)
    {
        RefuseManaged(name, "loaded");
        return LoadAsync(name, configOverrideJson, reuseUnchanged: false, cancellationToken);
    }

    /// <summary>Marks a model as managed by <paramref name="manager"/> (null: by nobody), so the repository API leaves it alone.</summary>
    public void SetManagedBy(string name, string? manager)
    {
        if (manager is null)
        {
            _managed.TryRemove(name, out _);
        }
        else
        {
            _managed[name] = manager;
        }
    }

    private void RefuseManaged(string name, string what)
    {
        if (_managed.TryGetValue(name, out var manager))
        {
            throw InferenceException.Invalid($"model '{name}' is managed by {manager} and cannot be {what} through the repository API; change its aliases or stages there instead");
        }
    }

    /// <param name="reuseUnchanged">Keep a serving version whose config is unchanged instead of loading it again
    /// (the registry's version folders never change; a repository load re-reads the files, as Triton does).</param>
    public async Task LoadAsync(string name, string? configOverrideJson, bool reuseUnchanged, CancellationToken cancellationToken = default)
    {
        if (!ModelNames.IsValid(name) || !Directory.Exists(Path.Combine(_options.Path, name)))
        {
            throw InferenceException.NotFound($"model '{name}' is not in the model repository");
        }

        var entry = _models.GetOrAdd(name, static n => new ModelEntry(n));
        await entry.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await LoadLockedAsync(entry, configOverrideJson, reuseUnchanged, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            entry.Gate.Release();
        }
    }

    /// <summary>The repository API's unload: refused for a managed model (see <see cref="SetManagedBy"/>).</summary>
    public Task UnloadAsync(string name, CancellationToken cancellationToken = default)
    {
        return UnloadAsync(name, asManager: false, cancellationToken);
    }

    /// <summary>Whether a component manages this model (see <see cref="SetManagedBy"/>).</summary>
    public bool IsManaged(string name) => _managed.ContainsKey(name);

    /// <summary>Whether a model of this name is in the repository or loaded (a cheap check for telemetry labels).</summary>
    public bool Knows(string name) => _models.ContainsKey(name);

    /// <summary>Unloads every version of a model, waiting for its running requests to finish.</summary>
    /// <param name="asManager">True for the model's manager itself; false refuses a managed model.</param>
    public async Task UnloadAsync(string name, bool asManager, CancellationToken cancellationToken = default)
    {
        if (!asManager)
        {
            RefuseManaged(name, "unloaded");
        }

        if (!_models.TryGetValue(name, out var entry))
        {
            if (ModelNames.IsValid(name) && Directory.Exists(Path.Combine(_options.Path, name)))
            {
                return; // Known to the repository but not loaded: nothing to do, as in Triton.
            }

            throw InferenceException.NotFound($"model '{name}' is not in the model repository");
        }

        await entry.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var old = entry.Snapshot;
            await Task.WhenAll(old.Versions.Values.Select(v => v.RetireAsync("unloaded", _options.DrainTimeout))).ConfigureAwait(false);
            entry.Snapshot = old with { Reason = "unloaded" };
            LogUnloaded(name);
        }
        finally
        {
            entry.Gate.Release();
        }
    }

    /// <summary>
    /// Resolves a request's model and version to a ready version and takes a lease on it; the
    /// caller releases it. No version means the highest ready one.
    /// </summary>
    public ModelVersion Acquire(string name, string? version)
    {
        // A swap retires the old version right after publishing the new snapshot: a request that
        // found the old one a moment too late looks again and finds its successor.
        for (var attempt = 0; ; attempt++)
        {
            var target = Find(name, version);
            if (target.IsReady && target.TryAcquire())
            {
                return target;
            }

            if (attempt == 2 || !string.IsNullOrEmpty(version))
            {
                throw InferenceException.Unavailable(Describe(name, version ?? target.Version.ToString(CultureInfo.InvariantCulture)) + " is not ready" + (target.Reason is { } r ? ": " + r : ""));
            }
        }
    }

    /// <summary>
    /// The version a request names, ready or not: the highest ready one when no version is given,
    /// else the highest known. Throws NotFound for an unknown model or version.
    /// </summary>
    public ModelVersion Find(string name, string? version)
    {
        if (!_models.TryGetValue(name, out var entry))
        {
            throw InferenceException.NotFound($"unknown model '{name}'");
        }

        // One read of the snapshot: versions from one and the pinned version from the next (a swap
        // in between) named a version the first did not hold, refusing a request mid-swap.
        var snapshot = entry.Snapshot;
        var versions = snapshot.Versions;
        if (string.IsNullOrEmpty(version) && snapshot.Serving is { } serving)
        {
            // A pinned version that cannot answer is refused, never silently replaced by another version.
            return versions.TryGetValue(serving, out var routed)
                ? routed
                : throw InferenceException.Unavailable($"model '{name}' serves version {serving} (pinned), which is not loaded");
        }

        if (string.IsNullOrEmpty(version))
        {
            ModelVersion? best = null;
            foreach (var candidate in versions.Values)
            {
                if (best is null || (candidate.IsReady && (!best.IsReady || candidate.Version > best.Version)) || (!best.IsReady && candidate.Version > best.Version))
                {
                    best = candidate;
                }
            }

            return best ?? throw InferenceException.Unavailable($"model '{name}' has no version loaded" + (snapshot.Reason is { } reason ? ": " + reason : ""));
        }

        if (!long.TryParse(version, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || !versions.TryGetValue(number, out var found))
        {
            throw InferenceException.NotFound($"unknown version '{version}' of model '{name}'");
        }

        return found;
    }

    /// <summary>Runs a request end to end: resolve, validate, execute, with statistics.</summary>
    /// <summary>The experiment layer: routes inferences that name no version (null: none).</summary>
    public Experiments.IExperimentRouter? Router { get; set; }

    public ValueTask<InferenceResult> InferAsync(string name, string? version, InferenceRequest request, CancellationToken cancellationToken)
    {
        // Without an experiment the call is the inner one, not awaited here: no second state machine on the hot path.
        var route = string.IsNullOrEmpty(version) ? RouteOf(name, request) : null;
        return route is null ? InferAsync(name, version, request, null, cancellationToken) : RoutedAsync(name, route, request, cancellationToken);
    }

    private async ValueTask<InferenceResult> RoutedAsync(string name, Experiments.ExperimentRoute route, InferenceRequest request, CancellationToken cancellationToken)
    {
        var start = _time.GetTimestamp();
        try
        {
            var result = await InferAsync(name, route.Version.ToString(CultureInfo.InvariantCulture), request, route, cancellationToken).ConfigureAwait(false);
            Tell(() => Router!.Completed(name, route, request, result, _time.GetElapsedTime(start)));
            return result;
        }
        catch (InferenceException e)
        {
            Tell(() => Router!.Failed(name, route, e, _time.GetElapsedTime(start)));
            throw;
        }
    }

    private Experiments.ExperimentRoute? RouteOf(string name, InferenceRequest request)
    {
        try
        {
            return Router?.Route(name, request);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The experiment layer never fails a request: without a route it goes where it would have.
            return null;
        }
    }

    /// <summary>The OpenTelemetry inference counter (a no-op with nothing listening).</summary>
    private static void Count(ModelVersion target, string outcome)
    {
        if (Diagnostics.Telemetry.Inferences.Enabled)
        {
            Diagnostics.Telemetry.Inferences.Add(1, new System.Diagnostics.TagList
            {
                { "medserve.model", target.Name },
                { "medserve.model_version", target.Version },
                { "medserve.outcome", outcome },
            });
        }
    }

    private static void Tell(Action report)
    {
        try
        {
            report();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // As above: what the experiment layer does with an answer is its own affair.
        }
    }

    private async ValueTask<InferenceResult> InferAsync(string name, string? version, InferenceRequest request, Experiments.ExperimentRoute? route, CancellationToken cancellationToken)
    {
        var target = Acquire(name, version);
        using var span = Diagnostics.Telemetry.Source.StartActivity("medserve.infer");
        span?.SetTag("medserve.model", target.Name);
        span?.SetTag("medserve.model_version", target.Version);
        try
        {
            IReadOnlyList<TensorConfig> outputs;
            try
            {
                outputs = RequestValidator.Validate(target.Config, request);
            }
            catch (InferenceException e)
            {
                target.Statistics.RecordFailure(0, e.Kind);
                throw;
            }

            var result = await target.ExecuteAsync(request, outputs, cancellationToken).ConfigureAwait(false);
            if (route is not null)
            {
                (result.Experiment, result.Arm) = (route.Experiment, route.Arm);
                span?.SetTag("medserve.experiment", route.Experiment);
                span?.SetTag("medserve.arm", route.Arm);
            }

            request.Sink?.Capture(target.Config, request, result);
            Count(target, "ok");
            return result;
        }
        catch (InferenceException e)
        {
            span?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, e.Kind.ToString());
            Count(target, e.Kind.ToString());
            throw;
        }
        finally
        {
            target.Release();
        }
    }

    /// <summary>
    /// Routes the model's unversioned requests to <paramref name="version"/> (null: the highest ready
    /// version again). The switch is one atomic snapshot swap; requests already routed finish where they are.
    /// </summary>
    public async Task SetServingVersionAsync(string name, long? version, CancellationToken cancellationToken = default)
    {
        if (!_models.TryGetValue(name, out var entry))
        {
            throw InferenceException.NotFound($"unknown model '{name}'");
        }

        await entry.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (version is { } v && (!entry.Snapshot.Versions.TryGetValue(v, out var target) || !target.IsReady))
            {
                throw InferenceException.Unavailable($"model '{name}' version {v} is not loaded and ready");
            }

            entry.Snapshot = entry.Snapshot with { Serving = version };
        }
        finally
        {
            entry.Gate.Release();
        }
    }

    /// <summary>The version unversioned requests go to now, if the model has a ready one.</summary>
    public long? ServingVersion(string name)
    {
        try
        {
            var target = Find(name, null);
            return target.IsReady ? target.Version : null;
        }
        catch (InferenceException)
        {
            return null;
        }
    }

    /// <summary>
    /// Warms a loaded version up with one request built from its signature (zeros, batch 1) and checks
    /// the outputs against the config. Returns null when it passes, else why not.
    /// </summary>
    public async Task<string?> WarmUpAsync(string name, long version, CancellationToken cancellationToken = default)
    {
        ModelVersion target;
        try
        {
            target = Acquire(name, version.ToString(CultureInfo.InvariantCulture));
        }
        catch (InferenceException e)
        {
            return e.Message;
        }

        try
        {
            return await WarmUpVersionAsync(target, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            target.Release();
        }
    }

    /// <summary>Runs a version's warm-up requests (its model_warmup, or one generated); null when every one answered as the config says.</summary>
    private async Task<string?> WarmUpVersionAsync(ModelVersion target, CancellationToken cancellationToken)
    {
        try
        {
            foreach (var built in WarmUpRequest.All(target.Config, Path.Combine(_options.Path, target.Name)))
            {
                using var request = built;
                var outputs = RequestValidator.Validate(target.Config, request);
                using var result = await target.ExecuteAsync(request, outputs, cancellationToken).ConfigureAwait(false);
                foreach (var expected in target.Config.Outputs)
                {
                    var output = result.Outputs.FirstOrDefault(o => o.Name == expected.Name);
                    if (output is null || output.DataType != expected.DataType)
                    {
                        return $"warm-up output '{expected.Name}' is missing or not {expected.DataType}";
                    }
                }
            }

            return null;
        }
        catch (InferenceException e)
        {
            return $"warm-up inference failed: {e.Message}";
        }
    }

    /// <summary>Every ready version, of one model or of all, sorted by name then version.</summary>
    public IReadOnlyList<ModelVersion> ReadyVersions(string? name = null)
    {
        IEnumerable<ModelEntry> entries = name is null
            ? _models.Values
            : _models.TryGetValue(name, out var entry) ? [entry] : [];
        return entries.OrderBy(e => e.Name, StringComparer.Ordinal)
            .SelectMany(e => e.Snapshot.Versions.Values.Where(v => v.IsReady))
            .ToList();
    }

    /// <summary>
    /// The versions a statistics request names: every ready version (no model), a model's ready
    /// versions, or one version that must be ready. Unknown names are NotFound.
    /// </summary>
    public IReadOnlyList<ModelVersion> StatisticsScope(string? name, string? version)
    {
        if (string.IsNullOrEmpty(name))
        {
            return ReadyVersions();
        }

        if (!string.IsNullOrEmpty(version))
        {
            var target = Find(name, version);
            return target.IsReady ? [target] : throw InferenceException.Unavailable($"model '{name}' version {version} is not ready");
        }

        Find(name, null);
        var ready = ReadyVersions(name);
        return ready.Count > 0 ? ready : throw InferenceException.Unavailable($"model '{name}' has no ready version");
    }

    /// <summary>The repository index: every model on disk or loaded, each version with its state.</summary>
    public IReadOnlyList<RepositoryIndexEntry> Index(bool readyOnly)
    {
        var names = new SortedSet<string>(RepositoryScanner.ListModels(_options.Path).Where(n => ModelNames.IsValid(n)), StringComparer.Ordinal);
        names.UnionWith(_models.Keys);
        var index = new List<RepositoryIndexEntry>();
        foreach (var name in names)
        {
            if (!_models.TryGetValue(name, out var entry))
            {
                if (!readyOnly)
                {
                    index.Add(new RepositoryIndexEntry(name, null, null, null));
                }

                continue;
            }

            var snapshot = entry.Snapshot;
            foreach (var version in snapshot.Versions.Values)
            {
                if (!readyOnly || version.IsReady)
                {
                    index.Add(new RepositoryIndexEntry(name, version.Version, version.State, version.Reason));
                }
            }

            foreach (var pending in snapshot.Pending)
            {
                if (!readyOnly && !snapshot.Versions.ContainsKey(pending))
                {
                    index.Add(new RepositoryIndexEntry(name, pending, ModelState.Loading, null));
                }
            }

            if (snapshot.Versions.Count == 0 && snapshot.Pending.IsEmpty && !readyOnly)
            {
                index.Add(new RepositoryIndexEntry(name, null, ModelState.Unavailable, snapshot.Reason));
            }
        }

        return index;
    }

    public async ValueTask DisposeAsync()
    {
        _stopping = true;
        foreach (var entry in _models.Values)
        {
            await Task.WhenAll(entry.Snapshot.Versions.Values.Select(v => v.RetireAsync("server stopped", _options.DrainTimeout))).ConfigureAwait(false);
        }
    }

    private async Task LoadLockedAsync(ModelEntry entry, string? configOverrideJson, bool reuseUnchanged, CancellationToken cancellationToken)
    {
        var name = entry.Name;
        var old = entry.Snapshot;
        ModelSource source;
        IModelBackend backend;
        IReadOnlyList<long> selected;
        ModelConfig config;
        try
        {
            source = RepositoryScanner.ReadModel(_options.Path, name, configOverrideJson);
            backend = _backends.FirstOrDefault(b => b.Handles(source.Config))
                ?? throw new ModelConfigException(
                    $"no backend for platform '{source.Config.Platform}' / backend '{source.Config.Backend}'");
            selected = source.Config.VersionPolicy.Select(source.Versions);
            if (selected.Count == 0)
            {
                throw new ModelConfigException(source.Versions.Count == 0
                    ? "no version folder (a positive integer, such as 1/) holds a model"
                    : "no version folder matches the version policy");
            }

            var signature = backend.Inspect(source.ModelPath(selected[0]));
            config = ConfigCompleter.Complete(source.Config, signature, backend.Platform, source.HasConfigFile ? 0 : _options.DefaultMaxBatchSize);
        }
        catch (Exception e) when (e is ModelConfigException or IOException or UnauthorizedAccessException or BackendLoadException)
        {
            // A configuration sent with the request may quote anything the client typed: the reason goes back to it, not to the log.
            LogLoadFailed(name, configOverrideJson is null ? e.Message : "the configuration sent with the load request is invalid (the caller was told why)");
            if (old.Versions.IsEmpty)
            {
                entry.Snapshot = old with { Reason = e.Message };
            }

            throw InferenceException.Invalid($"failed to load '{name}': {e.Message}");
        }

        entry.Snapshot = old with { Pending = [.. selected] };
        // Which versions load is not how a version serves: a loaded version whose config differs only
        // in its version policy (the reconciler rewrites it at every step) is kept, sessions, warm-up
        // and statistics included.
        var configKey = ReuseKey(config);
        var loaded = await Task.WhenAll(selected.Select(v =>
            reuseUnchanged && old.Versions.TryGetValue(v, out var serving) && serving.IsReady && ReuseKey(serving.Config) == configKey
                ? Task.FromResult(serving)
                : Task.Run(() => LoadVersion(backend, source, config, v), cancellationToken))).ConfigureAwait(false);

        // A config with model_warmup is warmed at load, as Triton does: a version that fails it does not serve.
        for (var i = 0; i < loaded.Length; i++)
        {
            var version = loaded[i];
            if (version.IsReady && version.Config.Warmup.Count > 0 && !(old.Versions.TryGetValue(version.Version, out var same) && same == version)
                && version.TryAcquire())
            {
                string? warmFailure;
                try
                {
                    warmFailure = await WarmUpVersionAsync(version, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    version.Release();
                }

                if (warmFailure is not null)
                {
                    await version.RetireAsync("warm-up failed", _options.DrainTimeout).ConfigureAwait(false);
                    loaded[i] = ModelVersion.Failed(name, version.Version, version.Config, warmFailure, _time);
                }
            }
        }

        var versions = ImmutableSortedDictionary.CreateBuilder<long, ModelVersion>();
        var failures = new List<string>();
        foreach (var version in loaded)
        {
            if (version.IsReady)
            {
                versions[version.Version] = version;
                continue;
            }

            failures.Add($"version {version.Version}: {version.Reason}");
            versions[version.Version] = old.Versions.TryGetValue(version.Version, out var previous) && previous.IsReady ? previous : version;
        }

        var kept = versions.ToImmutable();
        var routed = old.Serving is { } pinned && kept.ContainsKey(pinned) ? pinned : (long?)null;
        if (old.Serving is { } unpinned && routed is null)
        {
            LogUnpinned(name, unpinned);
        }

        entry.Snapshot = new ModelSnapshot(kept, [], failures.Count > 0 ? string.Join("; ", failures) : null) { Serving = routed };

        // Versions no longer served finish their running requests, then free their sessions.
        var retired = old.Versions.Values.Where(v => !versions.TryGetValue(v.Version, out var kept) || kept != v);
        await Task.WhenAll(retired.Select(v => v.RetireAsync("unloaded", _options.DrainTimeout))).ConfigureAwait(false);

        if (failures.Count > 0)
        {
            throw InferenceException.Invalid($"failed to load '{name}': {string.Join("; ", failures)}");
        }

        LogLoaded(name, string.Join(",", selected), config.InstanceCount);
    }

    /// <summary>Everything a session set depends on, and what a version carries (journal, monitoring): the config without its version policy.</summary>
    private static string ReuseKey(ModelConfig config) =>
        ModelConfigJson.ToJson(config with { VersionPolicy = VersionPolicy.Latest(1) }) + "|" + config.Journal + "|" + config.Monitoring.Canonical();

    private ModelVersion LoadVersion(IModelBackend backend, ModelSource source, ModelConfig config, long version)
    {
        var path = source.ModelPath(version);
        var instances = new List<IModelInstance>();
        try
        {
            if (!File.Exists(path))
            {
                throw new BackendLoadException($"{Path.GetFileName(path)} not found in version folder {version}");
            }

            for (var i = 0; i < config.InstanceCount; i++)
            {
                instances.Add(backend.CreateInstance(config, path, i));
            }

            return new ModelVersion(source.Name, version, config, [.. instances], _time, _histograms, _options.DefaultMaxQueueSize);
        }
        catch (Exception e)
        {
            foreach (var instance in instances)
            {
                instance.Dispose();
            }

            LogVersionFailed(source.Name, version, e.Message);
            return ModelVersion.Failed(source.Name, version, config, e.Message, _time);
        }
    }

    private static string Describe(string name, string? version) =>
        string.IsNullOrEmpty(version) ? $"model '{name}'" : $"model '{name}' version {version}";

    private sealed class ModelEntry(string name)
    {
        public string Name { get; } = name;

        public SemaphoreSlim Gate { get; } = new(1, 1);

        public volatile ModelSnapshot Snapshot = ModelSnapshot.Empty;
    }

    /// <summary>What a model serves now: its versions, those loading, and why it failed if it did.</summary>
    private sealed record ModelSnapshot(ImmutableSortedDictionary<long, ModelVersion> Versions, ImmutableArray<long> Pending, string? Reason)
    {
        /// <summary>The version unversioned requests go to; null routes to the highest ready version.</summary>
        public long? Serving { get; init; }

        public static ModelSnapshot Empty { get; } = new(ImmutableSortedDictionary<long, ModelVersion>.Empty, [], null);
    }
}

/// <summary>A backend could not load a model file (corrupt, unsupported); the message says why.</summary>
public sealed class BackendLoadException(string message, Exception? inner = null) : Exception(message, inner);
