using System.Text;
using System.Text.Json;
using MedServe.Compliance.Encryption;
using MedServe.Compliance.Predictions;
using MedServe.Lifecycle;
using MedServe.Outcomes;
using MedServe.Predictions;
using MedServe.Stats;
using MedServe.Stats.Clinical;
using MedServe.Stats.Design;
using MedServe.Stats.Experiments;
using MedServe.Stats.Tests;

namespace MedServe.Experiments;

/// <summary>
/// An experiment's report: per arm its units, requests, error rate, latency and score
/// distribution, and with outcomes its AUROC and Brier score. Each arm is set against the control
/// (the first arm): the difference with its interval, the fixed-horizon p-value, and the
/// always-valid mSPRT p-value and interval, safe to look at every minute. Holm's correction is
/// applied across the metrics. The report also gives the sample-ratio check (chi-square against
/// the weights, flagged at p &lt; 0.001 as GrowthBook does), the power reached and the sample size
/// still needed on the primary metric, and the decision.
/// </summary>
public sealed class ExperimentReport(ExperimentService experiments, IPredictionStore store, PredictionProjectionService projection, EnvelopeEncryption envelopes, ModelManager models, TimeProvider time)
{
    public const double Alpha = 0.05;

    /// <summary>The mixtures' standard deviations: the effect sizes the test is tuned to find (a rate point, a score or Brier change).</summary>
    private const double RateTau = 0.01;
    private const double ScoreTau = 0.05;

    private sealed record ArmData(string Name, double Weight, ArmStatistics? Live, List<double> Scores, List<double> Labels, List<double> LabelScores);

    private sealed record Comparison(string Arm, string Metric, double Control, double Candidate, double Difference, double Low, double High, double? FixedP, double AlwaysValidP, double AlwaysValidLow, double AlwaysValidHigh, bool LowerIsBetter);

    public async Task<Action<Utf8JsonWriter>> BuildAsync(string name, CancellationToken cancellationToken)
    {
        var stored = experiments.All.FirstOrDefault(e => e.Spec.Name == name) ?? throw new ExperimentException($"no experiment is named '{name}'", StatusCodes.Status404NotFound);
        var spec = stored.Spec;
        var (live, shadows, _) = experiments.StatisticsOf(name);
        var arms = spec.Arms.Select(a => new ArmData(a.Name, a.Weight, live.GetValueOrDefault(a.Name), [], [], [])).ToList();

        // Scores and outcomes per arm, from the journal's predictions of this experiment (the arm is in each payload).
        await projection.CatchUpAsync(cancellationToken).ConfigureAwait(false);
        var monitoring = Repository.MonitoringSpec.Default;
        try
        {
            monitoring = models.Find(spec.Model, null).Config.Monitoring;
        }
        catch (Inference.InferenceException)
        {
            // Not loaded: the default spec scores it.
        }

        var now = time.GetUtcNow();
        foreach (var prediction in await store.QueryAsync(new PredictionQuery(spec.Model, null, stored.State.CreatedAt, now.AddSeconds(1), null, 0, 100_000), cancellationToken).ConfigureAwait(false))
        {
            if (prediction.Payload.Length == 0)
            {
                continue;
            }

            var decoded = PredictionPayload.Decode(envelopes.Decrypt(prediction.Payload, Encoding.UTF8.GetBytes(prediction.RequestId)));
            if (decoded.Subgroups.GetValueOrDefault(PredictionCapture.ExperimentKey) == name && arms.FirstOrDefault(a => a.Name == decoded.Subgroups.GetValueOrDefault(PredictionCapture.ArmKey)) is { } arm
                && PerformanceReport.Score(decoded, monitoring) is { } score && double.IsFinite(score))
            {
                arm.Scores.Add(score);
            }
        }

        var (_, judged, _) = await OutcomesApi.JudgedAsync(spec.Model, null, stored.State.CreatedAt, now.AddSeconds(1), store, projection, envelopes, models, cancellationToken).ConfigureAwait(false);
        foreach (var j in judged.Where(j => j.Label is not null && j.Subgroups.GetValueOrDefault(PredictionCapture.ExperimentKey) == name))
        {
            if (arms.FirstOrDefault(a => a.Name == j.Subgroups.GetValueOrDefault(PredictionCapture.ArmKey)) is { } arm)
            {
                arm.Labels.Add(j.Label!.Value);
                arm.LabelScores.Add(j.Score);
            }
        }

        var comparisons = arms.Skip(1).SelectMany(a => Compare(arms[0], a)).ToList();
        var fixedAdjusted = Holm(comparisons.Select(c => c.FixedP).ToList());
        var validAdjusted = Holm(comparisons.Select(c => (double?)c.AlwaysValidP).ToList());
        var withOutcomes = arms.All(a => Clinical(a));
        var primary = withOutcomes ? "brier" : "error_rate";
        return w =>
        {
            w.WriteStartObject();
            w.WriteString("experiment", name);
            w.WriteString("model", spec.Model);
            w.WriteString("status", stored.State.Status);
            w.WriteString("reason", stored.State.Reason);
            w.WriteString("since", stored.State.CreatedAt);
            w.WriteStartArray("arms");
            foreach (var arm in arms)
            {
                WriteArm(w, arm);
            }

            w.WriteEndArray();
            if (shadows.Count > 0)
            {
                w.WriteStartArray("shadows");
                foreach (var (arm, s) in shadows)
                {
                    w.WriteStartObject();
                    w.WriteString("name", arm);
                    w.WriteNumber("compared", s.Compared);
                    if (s.Agreement is { } agreement)
                    {
                        w.WriteNumber("agreement", agreement);
                        w.WriteNumber("score_difference_mean", s.Difference.Mean);
                        if (double.IsFinite(s.Difference.Sd))
                        {
                            w.WriteNumber("score_difference_sd", s.Difference.Sd);
                        }
                    }

                    w.WriteNumber("failed", s.Failed);
                    w.WriteNumber("dropped", s.Dropped);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
            }

            w.WriteStartArray("comparisons");
            for (var i = 0; i < comparisons.Count; i++)
            {
                var c = comparisons[i];
                w.WriteStartObject();
                w.WriteString("arm", c.Arm);
                w.WriteString("metric", c.Metric);
                w.WriteNumber("control", c.Control);
                w.WriteNumber("candidate", c.Candidate);
                w.WriteNumber("difference", c.Difference);
                w.WriteNumber("ci_low", c.Low);
                w.WriteNumber("ci_high", c.High);
                if (c.FixedP is { } p)
                {
                    w.WriteNumber("p_value", p);
                    w.WriteNumber("p_value_holm", fixedAdjusted[i]!.Value);
                }

                w.WriteNumber("always_valid_p", c.AlwaysValidP);
                w.WriteNumber("always_valid_p_holm", validAdjusted[i]!.Value);
                if (double.IsFinite(c.AlwaysValidLow) && double.IsFinite(c.AlwaysValidHigh))
                {
                    // No interval yet while the difference has no variance (every answer alike).
                    w.WriteNumber("always_valid_ci_low", c.AlwaysValidLow);
                    w.WriteNumber("always_valid_ci_high", c.AlwaysValidHigh);
                }
                w.WriteEndObject();
            }

            w.WriteEndArray();
            WriteSampleRatio(w, stored, arms);
            WriteDecision(w, arms, comparisons, validAdjusted, primary);
            w.WriteEndObject();
        };
    }

    private static bool Clinical(ArmData arm) => arm.Labels.Count >= OutcomesApi.MinimumOutcomes && arm.Labels.Any(l => l == 1) && arm.Labels.Any(l => l == 0);

    private static void WriteArm(Utf8JsonWriter w, ArmData arm)
    {
        w.WriteStartObject();
        w.WriteString("name", arm.Name);
        var live = arm.Live;
        w.WriteNumber("units", live?.Units ?? 0);
        w.WriteNumber("requests", live?.Requests ?? 0);
        w.WriteNumber("request_fallbacks", live?.Fallbacks ?? 0);
        w.WriteNumber("errors", live?.Failures ?? 0);
        w.WriteNumber("invalid_outputs", live?.InvalidOutputs ?? 0);
        if (live is { Requests: > 0 })
        {
            var (low, high) = Intervals.Wilson(live.Failures, live.Requests);
            w.WriteStartObject("error_rate");
            w.WriteNumber("value", (double)live.Failures / live.Requests);
            w.WriteNumber("ci_low", low);
            w.WriteNumber("ci_high", high);
            w.WriteEndObject();
            w.WriteStartObject("latency_ms");
            w.WriteNumber("p50", live.Percentile(0.5) ?? 0);
            w.WriteNumber("p99", live.Percentile(0.99) ?? 0);
            w.WriteEndObject();
        }

        if (arm.Scores.Count > 0)
        {
            var sorted = arm.Scores.Order().ToArray();
            w.WriteStartObject("scores");
            w.WriteNumber("n", sorted.Length);
            w.WriteNumber("mean", sorted.Average());
            foreach (var (label, q) in new[] { ("p10", 0.1), ("p50", 0.5), ("p90", 0.9) })
            {
                w.WriteNumber(label, Stats.Drift.FeatureReference.Quantile(sorted, q));
            }

            w.WriteEndObject();
        }

        w.WriteNumber("outcomes", arm.Labels.Count);
        if (Clinical(arm))
        {
            var auroc = ClinicalMetrics.AurocWithInterval(arm.Labels, arm.LabelScores);
            w.WriteStartObject("auroc");
            w.WriteNumber("value", auroc.Value);
            w.WriteNumber("ci_low", auroc.Low);
            w.WriteNumber("ci_high", auroc.High);
            w.WriteEndObject();
            w.WriteStartObject("brier");
            w.WriteNumber("value", ClinicalMetrics.Brier(arm.Labels, arm.LabelScores));
            w.WriteEndObject();
        }

        w.WriteEndObject();
    }

    /// <summary>Candidate against control: error rate, mean score, and with outcomes Brier and AUROC.</summary>
    private static IEnumerable<Comparison> Compare(ArmData control, ArmData candidate)
    {
        var z = MathNet.Numerics.Distributions.Normal.InvCDF(0, 1, 1 - (Alpha / 2));
        if (control.Live is { Requests: > 0 } a && candidate.Live is { Requests: > 0 } b)
        {
            double pa = (double)a.Failures / a.Requests, pb = (double)b.Failures / b.Requests;
            var (difference, low, high) = Intervals.NewcombeDifference(b.Failures, b.Requests, a.Failures, a.Requests);
            var variance = (pa * (1 - pa) / a.Requests) + (pb * (1 - pb) / b.Requests);
            double? fixedP = (a.Failures + b.Failures) is > 0 && (a.Failures + b.Failures) < a.Requests + b.Requests
                ? HypothesisTests.TwoProportionZTest([b.Failures, a.Failures], [b.Requests, a.Requests]).P
                : null;
            var valid = variance > 0 ? AlwaysValid.Once(difference, variance, RateTau, Alpha) : (1, double.NegativeInfinity, double.PositiveInfinity);
            yield return new Comparison(candidate.Name, "error_rate", pa, pb, difference, low, high, fixedP, valid.Item1, valid.Item2, valid.Item3, true);
        }

        if (control.Scores.Count >= 2 && candidate.Scores.Count >= 2)
        {
            yield return Means(candidate.Name, "mean_score", control.Scores, candidate.Scores, ScoreTau, false, z);
        }

        if (Clinical(control) && Clinical(candidate))
        {
            var ea = control.Labels.Select((l, i) => (control.LabelScores[i] - l) * (control.LabelScores[i] - l)).ToList();
            var eb = candidate.Labels.Select((l, i) => (candidate.LabelScores[i] - l) * (candidate.LabelScores[i] - l)).ToList();
            yield return Means(candidate.Name, "brier", ea, eb, ScoreTau, true, z);
            var (aucA, varA) = ClinicalMetrics.AurocWithVariance(control.Labels, control.LabelScores);
            var (aucB, varB) = ClinicalMetrics.AurocWithVariance(candidate.Labels, candidate.LabelScores);
            var d = aucB - aucA;
            var v = varA + varB;
            var half = z * Math.Sqrt(v);
            var p = v > 0 ? 2 * MathNet.Numerics.Distributions.Normal.CDF(0, 1, -Math.Abs(d) / Math.Sqrt(v)) : 1;
            var valid = v > 0 ? AlwaysValid.Once(d, v, ScoreTau, Alpha) : (1, double.NegativeInfinity, double.PositiveInfinity);
            yield return new Comparison(candidate.Name, "auroc", aucA, aucB, d, d - half, d + half, p, valid.Item1, valid.Item2, valid.Item3, false);
        }
    }

    private static Comparison Means(string arm, string metric, List<double> a, List<double> b, double tau, bool lowerIsBetter, double z)
    {
        double ma = a.Average(), mb = b.Average();
        double va = a.Sum(x => (x - ma) * (x - ma)) / (a.Count - 1), vb = b.Sum(x => (x - mb) * (x - mb)) / (b.Count - 1);
        var variance = (va / a.Count) + (vb / b.Count);
        var d = mb - ma;
        double? p = variance > 0 ? HypothesisTests.WelchTTest(b, a).P : null;
        var valid = variance > 0 ? AlwaysValid.Once(d, variance, tau, Alpha) : (1, double.NegativeInfinity, double.PositiveInfinity);
        return new Comparison(arm, metric, ma, mb, d, d - (z * Math.Sqrt(variance)), d + (z * Math.Sqrt(variance)), p, valid.Item1, valid.Item2, valid.Item3, lowerIsBetter);
    }

    private static void WriteSampleRatio(Utf8JsonWriter w, StoredExperiment stored, List<ArmData> arms)
    {
        w.WriteStartObject("sample_ratio");
        if (stored.Spec.Rollout is not null)
        {
            w.WriteString("note", "not checked during a rollout: its shares change by design");
        }
        else if (arms.Count >= 2 && arms.All(a => a.Weight > 0) && arms.Sum(a => a.Live?.Units ?? 0) > 0)
        {
            var (chi2, p) = HypothesisTests.SampleRatioMismatch([.. arms.Select(a => (double)(a.Live?.Units ?? 0))], [.. arms.Select(a => a.Weight)]);
            w.WriteString("counted", "units");
            w.WriteNumber("chi2", chi2);
            w.WriteNumber("p_value", p);
            w.WriteBoolean("mismatch", p < 0.001);
        }

        w.WriteEndObject();
    }

    private static void WriteDecision(Utf8JsonWriter w, List<ArmData> arms, List<Comparison> comparisons, List<double?> validAdjusted, string primary)
    {
        w.WriteStartObject("decision");
        w.WriteString("primary_metric", primary);
        var index = comparisons.FindIndex(c => c.Metric == primary);
        if (index < 0 || arms.Count < 2)
        {
            w.WriteString("decision", "continue");
            w.WriteString("why", $"no comparison on {primary} yet");
            w.WriteEndObject();
            return;
        }

        var c = comparisons[index];
        double n = Math.Min(arms[0].Live?.Requests ?? 0, arms[1].Live?.Requests ?? 0);
        double needed, power;
        if (primary == "error_rate")
        {
            needed = c.Control != c.Candidate ? Intervals.SampleSizeTwoProportions(Math.Clamp(c.Control, 1e-6, 1 - 1e-6), Math.Clamp(c.Candidate, 1e-6, 1 - 1e-6), Alpha, 0.8) : double.PositiveInfinity;
            power = c.Control != c.Candidate ? Intervals.PowerTwoProportions(c.Control, c.Candidate, n, Alpha) : Alpha;
        }
        else
        {
            n = Math.Min(arms[0].Labels.Count, arms[1].Labels.Count);
            var sd = Math.Max(1e-12, (c.High - c.Low) / (2 * MathNet.Numerics.Distributions.Normal.InvCDF(0, 1, 1 - (Alpha / 2))) * Math.Sqrt(n / 2));
            var d = c.Difference / sd;
            needed = d != 0 ? Intervals.SampleSizeTTest(d, Alpha, 0.8) : double.PositiveInfinity;
            power = Intervals.PowerTTest(d, n, Alpha);
        }

        var better = c.LowerIsBetter ? c.Difference < 0 : c.Difference > 0;
        var decision = validAdjusted[index] < Alpha ? (better ? "stop for benefit" : "stop for harm") : n >= needed ? "inconclusive" : "continue";
        w.WriteString("decision", decision);
        w.WriteNumber("always_valid_p_holm", validAdjusted[index]!.Value);
        w.WriteNumber("per_arm", n);
        w.WriteNumber("power_reached", power);
        if (double.IsFinite(needed))
        {
            w.WriteNumber("sample_size_needed_per_arm", Math.Ceiling(needed));
            w.WriteNumber("sample_size_still_needed_per_arm", Math.Max(0, Math.Ceiling(needed - n)));
        }

        w.WriteEndObject();
    }

    private static List<double?> Holm(List<double?> p)
    {
        var present = p.Select((v, i) => (v, i)).Where(x => x.v is not null).ToList();
        var adjusted = present.Count > 0 ? Intervals.Holm([.. present.Select(x => x.v!.Value)]) : [];
        var result = new double?[p.Count];
        for (var k = 0; k < present.Count; k++)
        {
            result[present[k].i] = adjusted[k];
        }

        return [.. result];
    }
}
