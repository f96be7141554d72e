using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.IO.Hashing;
using System.Text;
using MedServe.Compliance.Audit;
using MedServe.Experiments;
using MedServe.Inference;
using MedServe.Lifecycle;
using MedServe.Outcomes;
using MedServe.Predictions;

namespace MedServe.Experiments;

/// <summary>An arm as it routes now: its version and its share (for a rollout, the step's).</summary>
public sealed record LiveArm(string Name, long Version, double Weight);

/// <summary>What one arm has done since its experiment started.</summary>
public sealed class ArmStatistics
{
    private readonly ConcurrentDictionary<ulong, byte> _units = new();
    private long _requests;
    private long _failures;
    private long _invalid;
    private long _fallbacks;
    private int _unitCount;

    public MedServe.Statistics.Histogram Latency { get; } = new(MedServe.Statistics.Histogram.LatencyBucketsNs);

    public long Requests => Volatile.Read(ref _requests);

    public long Failures => Volatile.Read(ref _failures);

    public long InvalidOutputs => Volatile.Read(ref _invalid);

    /// <summary>Requests that named no patient under unit "patient": assigned by their request instead.</summary>
    public long Fallbacks => Volatile.Read(ref _fallbacks);

    public int Units => Volatile.Read(ref _unitCount);

    internal void Record(ulong unit, bool fallback, bool failed, bool invalid, TimeSpan latency)
    {
        Interlocked.Increment(ref _requests);
        if (failed)
        {
            Interlocked.Increment(ref _failures);
        }

        if (invalid)
        {
            Interlocked.Increment(ref _invalid);
        }

        if (fallback)
        {
            Interlocked.Increment(ref _fallbacks);
        }

        // ConcurrentDictionary.Count takes every lock (10 us a call, measured): the count of units is kept beside it.
        if (Volatile.Read(ref _unitCount) < 1_000_000 && _units.TryAdd(unit, 0))
        {
            Interlocked.Increment(ref _unitCount);
        }

        Latency.Observe((long)(latency.TotalMilliseconds * 1_000_000));
    }

    /// <summary>The q-quantile of latency in ms, interpolated in the histogram as histogram_quantile does.</summary>
    public double? Percentile(double q) => MedServe.Statistics.Histogram.Quantile(MedServe.Statistics.Histogram.LatencyBucketsNs, Latency.CumulativeCounts(), q) / 1e6;
}

/// <summary>A shadow's comparison with the primary answers: agreement at the threshold, and the score differences.</summary>
public sealed class ShadowStatistics
{
    private long _compared;
    private long _agreed;
    private long _failed;
    private long _dropped;
    private double _sum;
    private double _sumSquares;
    private readonly object _gate = new();

    public long Compared => Volatile.Read(ref _compared);

    public long Agreed => Volatile.Read(ref _agreed);

    public long Failed => Volatile.Read(ref _failed);

    public long Dropped => Volatile.Read(ref _dropped);

    public double? Agreement => Compared > 0 ? (double)Agreed / Compared : null;

    public (double Mean, double Sd) Difference
    {
        get
        {
            lock (_gate)
            {
                var n = Compared;
                if (n < 2)
                {
                    return (n == 1 ? _sum : double.NaN, double.NaN);
                }

                var mean = _sum / n;
                return (mean, Math.Sqrt(Math.Max(0, (_sumSquares - (n * mean * mean)) / (n - 1))));
            }
        }
    }

    internal void Compare(double primary, double shadow, double threshold)
    {
        lock (_gate)
        {
            _sum += shadow - primary;
            _sumSquares += (shadow - primary) * (shadow - primary);
            _compared++;
            _agreed += (primary >= threshold) == (shadow >= threshold) ? 1 : 0;
        }
    }

    internal void Fail() => Interlocked.Increment(ref _failed);

    internal void Drop() => Interlocked.Increment(ref _dropped);
}

/// <summary>A running experiment as the router holds it: its spec and state, its arms as they route now, and the live statistics.</summary>
public sealed class LiveExperiment(StoredExperiment stored, IReadOnlyList<LiveArm> arms, IReadOnlyList<ShadowArm> shadows, ConcurrentDictionary<string, ArmStatistics> statistics, ConcurrentDictionary<string, ShadowStatistics> shadowStatistics)
{
    public StoredExperiment Stored { get; } = stored;

    public IReadOnlyList<LiveArm> Arms { get; } = arms;

    public IReadOnlyList<ShadowArm> Shadows { get; } = shadows;

    public ConcurrentDictionary<string, ArmStatistics> Statistics { get; } = statistics;

    public ConcurrentDictionary<string, ShadowStatistics> ShadowStatistics { get; } = shadowStatistics;
}

/// <summary>
/// Routes a model's unversioned inferences through its running experiment. A unit (the
/// patient's pseudonym under unit "patient", else the request) goes to the arm with the lowest
/// weighted rendezvous score -ln(u) / weight, u a hash of the experiment's salt, the unit and the
/// arm: the same unit always lands on the same arm (across restarts, and across replicas that share
/// the pseudonym secret, as they must for their journals' pseudonyms to agree: nothing but the hash
/// decides), and raising one arm's weight moves units only onto that arm, no more than the change requires. The routing table is one immutable snapshot, swapped whole on every change.
/// Shadows get a copy of each routed request after the answer, bounded, never in its way.
/// </summary>
public sealed partial class ExperimentRouter(Pseudonymizer pseudonyms, ILogger<ExperimentRouter> logger) : IExperimentRouter
{
    /// <summary>Shadow requests in flight at most (one per core: a shadow must not take the cores its primary needs); more are dropped and counted.</summary>
    public static readonly int MaxShadowsInFlight = Math.Max(2, Environment.ProcessorCount);

    public static readonly TimeSpan ShadowTimeout = TimeSpan.FromSeconds(5);

    private ImmutableDictionary<string, LiveExperiment> _byModel = ImmutableDictionary<string, LiveExperiment>.Empty.WithComparers(StringComparer.Ordinal);
    private int _shadowsInFlight;

    /// <summary>Runs shadow copies (set by the service: the model manager that owns the sessions).</summary>
    public ModelManager? Models { get; set; }

    public IReadOnlyDictionary<string, LiveExperiment> Snapshot => Volatile.Read(ref _byModel);

    /// <summary>Replaces the whole routing table at once: a request sees the old one or the new one.</summary>
    public void Publish(IEnumerable<LiveExperiment> experiments) =>
        Volatile.Write(ref _byModel, experiments.ToImmutableDictionary(e => e.Stored.Spec.Model, StringComparer.Ordinal));

    public ExperimentRoute? Route(string model, InferenceRequest request)
    {
        if (!Snapshot.TryGetValue(model, out var live) || !live.Stored.State.Routes)
        {
            return null;
        }

        var (unit, fallback) = UnitOf(live.Stored.Spec, request);
        var arm = Assign(live.Stored.Spec.Name, unit, live.Arms);
        request.Experiment = new RoutedUnit(Hash(unit), fallback);
        return new ExperimentRoute(live.Stored.Spec.Name, arm.Name, arm.Version, live.Shadows);
    }

    public void Completed(string model, ExperimentRoute route, InferenceRequest request, InferenceResult result, TimeSpan latency)
    {
        if (!Snapshot.TryGetValue(model, out var live) || live.Stored.Spec.Name != route.Experiment)
        {
            return;
        }

        var spec = Spec(model, route.Version);
        var unit = request.Experiment as RoutedUnit;
        live.Statistics.GetOrAdd(route.Arm, _ => new ArmStatistics()).Record(unit?.Hash ?? 0, unit?.Fallback ?? false, false, Invalid(result, spec), latency);
        if (live.Shadows.Count > 0)
        {
            Shadow(model, live, request, result, spec);
        }
    }

    public void Failed(string model, ExperimentRoute route, InferenceException error, TimeSpan latency)
    {
        if (Snapshot.TryGetValue(model, out var live) && live.Stored.Spec.Name == route.Experiment)
        {
            live.Statistics.GetOrAdd(route.Arm, _ => new ArmStatistics()).Record(0, false, true, false, latency);
        }
    }

    /// <summary>The arm of a unit: the lowest -ln(u) / weight over the arms with a share.</summary>
    public static LiveArm Assign(string salt, string unit, IReadOnlyList<LiveArm> arms)
    {
        LiveArm? best = null;
        var bestScore = double.PositiveInfinity;
        foreach (var arm in arms)
        {
            if (!(arm.Weight > 0))
            {
                continue;
            }

            var h = Hash(salt, unit, arm.Name);
            var u = ((h >> 11) + 0.5) / (1UL << 53);
            var score = -Math.Log(u) / arm.Weight;
            if (score < bestScore)
            {
                (best, bestScore) = (arm, score);
            }
        }

        return best ?? arms[0];
    }

    private (string Unit, bool Fallback) UnitOf(ExperimentSpec spec, InferenceRequest request)
    {
        if (spec.Unit == "patient" && MedServe.Security.AuditDetails.PatientIdFrom(request.Parameters) is { } patient)
        {
            return ("p:" + pseudonyms.Pseudonym(patient), false);
        }

        // No patient (or unit "request"): the request is the unit, by the client's id or, without one, at random.
        return ("r:" + (request.Id ?? Guid.NewGuid().ToString("N")), spec.Unit == "patient");
    }

    private static ulong Hash(string unit) => XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(unit));

    /// <summary>XxHash64 of "salt\nunit\narm" in UTF-8, in a stack buffer when it fits (it is asked once per arm per request).</summary>
    private static ulong Hash(string salt, string unit, string arm)
    {
        var length = Encoding.UTF8.GetByteCount(salt) + Encoding.UTF8.GetByteCount(unit) + Encoding.UTF8.GetByteCount(arm) + 2;
        Span<byte> bytes = length <= 512 ? stackalloc byte[length] : new byte[length];
        var at = Encoding.UTF8.GetBytes(salt, bytes);
        bytes[at++] = (byte)'\n';
        at += Encoding.UTF8.GetBytes(unit, bytes[at..]);
        bytes[at++] = (byte)'\n';
        Encoding.UTF8.GetBytes(arm, bytes[at..]);
        return XxHash64.HashToUInt64(bytes);
    }

    private Repository.MonitoringSpec Spec(string model, long version)
    {
        try
        {
            return Models?.Find(model, version.ToString(System.Globalization.CultureInfo.InvariantCulture)).Config.Monitoring ?? Repository.MonitoringSpec.Default;
        }
        catch (InferenceException)
        {
            return Repository.MonitoringSpec.Default;
        }
    }

    /// <summary>An output element NaN, infinite, or outside the spec's declared range.</summary>
    public static bool Invalid(InferenceResult result, Repository.MonitoringSpec spec) =>
        result.Outputs.Any(o => OutputChecks.Invalid(spec, o.DataType, o.Data.Span));

    /// <summary>Copies the request (its inputs outlive the answer that way) and runs it on each shadow, off the request's path; full: dropped and counted.</summary>
    private void Shadow(string model, LiveExperiment live, InferenceRequest request, InferenceResult result, Repository.MonitoringSpec spec)
    {
        var models = Models;
        if (models is null)
        {
            return;
        }

        var primary = Score(result.Outputs, spec);
        foreach (var shadow in live.Shadows)
        {
            var statistics = live.ShadowStatistics.GetOrAdd(shadow.Arm, _ => new ShadowStatistics());
            if (Interlocked.Increment(ref _shadowsInFlight) > MaxShadowsInFlight)
            {
                Interlocked.Decrement(ref _shadowsInFlight);
                statistics.Drop();
                continue;
            }

            var copy = new InferenceRequest { Id = request.Id };
            foreach (var input in request.Inputs)
            {
                copy.Inputs.Add(new InputTensor(input.Name, input.DataType, [.. input.Shape], input.Data.ToArray()));
            }

            _ = Task.Run(async () =>
            {
                using var timeout = new CancellationTokenSource(ShadowTimeout);
                try
                {
                    using var answer = await models.InferAsync(model, shadow.Version.ToString(System.Globalization.CultureInfo.InvariantCulture), copy, timeout.Token).ConfigureAwait(false);
                    if (primary is { } p && Score(answer.Outputs, spec) is { } s && double.IsFinite(p) && double.IsFinite(s))
                    {
                        statistics.Compare(p, s, spec.Threshold);
                    }
                    else
                    {
                        statistics.Fail();
                    }
                }
                catch (Exception e) when (e is InferenceException or OperationCanceledException)
                {
                    statistics.Fail();
                }
                catch (Exception e)
                {
                    statistics.Fail();
                    LogShadowFailed(logger, model, shadow.Arm, e.GetType().Name);
                }
                finally
                {
                    copy.Dispose();
                    Interlocked.Decrement(ref _shadowsInFlight);
                }
            });
        }
    }

    private static double? Score(IReadOnlyList<OutputTensor> outputs, Repository.MonitoringSpec spec)
    {
        var i = OutputChecks.ScoreOutput(spec, outputs.Count, k => outputs[k].Name, k => outputs[k].DataType);
        return i >= 0 ? OutputChecks.Score(spec, outputs[i].DataType, outputs[i].Shape, outputs[i].Data.Span) : null;
    }

    [LoggerMessage(EventId = 600, Level = LogLevel.Warning, Message = "Shadow {Arm} of model {Model} failed ({Kind}); the answer was not affected")]
    private static partial void LogShadowFailed(ILogger logger, string model, string arm, string kind);
}

/// <summary>What the router noted on a routed request: its unit's hash (for counting units), and whether it fell back to the request.</summary>
public sealed record RoutedUnit(ulong Hash, bool Fallback);
