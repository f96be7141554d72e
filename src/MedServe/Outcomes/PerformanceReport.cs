using System.Text.Json;
using MedServe.Predictions;
using MedServe.Repository;
using MedServe.Tensors;
using MedServe.Stats;
using MedServe.Stats.Clinical;
using MedServe.Stats.Design;

namespace MedServe.Outcomes;

/// <summary>One logged prediction with its outcome, read back: the score the monitoring spec names, the subgroups it declared, the label or value.</summary>
public sealed record JudgedPrediction(double Score, double? Label, double? Value, IReadOnlyDictionary<string, string> Subgroups);

/// <summary>
/// Writes the clinical performance of a set of judged predictions: for the whole and for each
/// declared subgroup, AUROC (DeLong), AUPRC, Brier, the calibration fit (Wald intervals), ECE with
/// its reliability bins, and sensitivity, specificity, PPV and NPV at the threshold (Wilson); each
/// subgroup's gap to the whole, with the interval of its difference from the rest of the cohort
/// (independent samples: DeLong variances added, Newcombe for proportions) and a flag when it
/// trails the whole by more than the margin and that interval lies below zero. Value outcomes
/// (a regression model) get MAE, mean error, RMSE and R².
/// </summary>
public static class PerformanceReport
{
    /// <summary>Fewer outcomes than this (or one class only) give no figures, only the counts.</summary>
    public const int MinimumOutcomes = 20;

    private static readonly string[] GapMetrics = ["auroc", "sensitivity", "specificity", "ppv", "npv"];

    /// <summary>The score a prediction's outputs hold, as the spec says (default: the first FP32/FP64 output; element 1 of a [-1, 2] output).</summary>
    public static double? Score(DecodedPrediction prediction, MonitoringSpec spec)
    {
        var outputs = prediction.Outputs;
        var i = OutputChecks.ScoreOutput(spec, outputs.Count, k => outputs[k].Name, k => outputs[k].DataType);
        return i >= 0 && outputs[i].Data is { } data ? OutputChecks.Score(spec, outputs[i].DataType, outputs[i].Shape, data) : null;
    }

    public static void Write(Utf8JsonWriter w, IReadOnlyList<JudgedPrediction> judged, MonitoringSpec spec, double threshold)
    {
        var binary = judged.Where(j => j.Label is not null).ToList();
        var whole = Measure(binary, threshold);
        w.WriteNumber("n", binary.Count);
        w.WriteNumber("positives", binary.Count(j => j.Label == 1));
        w.WriteNumber("threshold", threshold);
        WriteFigures(w, whole, binary.Count);
        if (spec.Subgroups.Count > 0)
        {
            w.WriteNumber("subgroup_margin", spec.SubgroupMargin);
            w.WriteStartObject("subgroups");
            foreach (var parameter in spec.Subgroups)
            {
                w.WriteStartArray(parameter);
                foreach (var group in binary.Where(j => j.Subgroups.ContainsKey(parameter)).GroupBy(j => j.Subgroups[parameter]).OrderBy(g => g.Key, StringComparer.Ordinal))
                {
                    var members = group.ToList();
                    var rest = binary.Where(j => !j.Subgroups.TryGetValue(parameter, out var v) || v != group.Key).ToList();
                    var figures = Measure(members, threshold);
                    w.WriteStartObject();
                    w.WriteString("value", group.Key);
                    w.WriteNumber("n", members.Count);
                    w.WriteNumber("positives", members.Count(j => j.Label == 1));
                    WriteFigures(w, figures, members.Count);
                    if (figures is not null && whole is not null)
                    {
                        WriteGaps(w, figures, whole, Measure(rest, threshold), spec.SubgroupMargin);
                    }

                    w.WriteEndObject();
                }

                w.WriteEndArray();
            }

            w.WriteEndObject();
        }

        var values = judged.Where(j => j.Value is not null).ToList();
        if (values.Count > 0)
        {
            w.WriteStartObject("regression");
            w.WriteNumber("n", values.Count);
            try
            {
                var report = RegressionMetrics.Compute([.. values.Select(v => v.Value!.Value)], [.. values.Select(v => v.Score)]);
                Metric(w, "mae", report.MeanAbsoluteError);
                Metric(w, "mean_error", report.MeanError);
                Metric(w, "rmse", report.RootMeanSquaredError);
                Metric(w, "r2", report.RSquared);
            }
            catch (StatisticsException e)
            {
                w.WriteString("insufficient", e.Message);
            }

            w.WriteEndObject();
        }
    }

    /// <summary>The figures of a set with both classes and enough outcomes, or null.</summary>
    private static Figures? Measure(IReadOnlyList<JudgedPrediction> set, double threshold)
    {
        var positives = set.Count(j => j.Label == 1);
        if (set.Count < MinimumOutcomes || positives == 0 || positives == set.Count)
        {
            return null;
        }

        var labels = set.Select(j => j.Label!.Value).ToArray();
        var scores = set.Select(j => j.Score).ToArray();
        var figures = new Figures { Auroc = ClinicalMetrics.AurocWithVariance(labels, scores) };
        figures.Metrics["auroc"] = ClinicalMetrics.AurocWithInterval(labels, scores);
        figures.Metrics["auprc"] = AveragePrecisionWithInterval(labels, scores);
        if (scores.All(s => s is >= 0 and <= 1))
        {
            figures.Metrics["brier"] = BrierWithInterval(labels, scores);
            try
            {
                var (intercept, slope) = ClinicalMetrics.CalibrationFitWithIntervals(labels, scores);
                figures.Metrics["calibration_intercept"] = intercept;
                figures.Metrics["calibration_slope"] = slope;
            }
            catch (StatisticsException)
            {
                // Scores at 0 or 1, or separation: the fit has no answer, and the metric is left out.
            }

            (var ece, figures.Reliability) = Calibration.ExpectedCalibrationError(labels, scores);
            figures.Metrics["ece"] = Point(ece);
        }

        int tp = 0, fp = 0, tn = 0, fn = 0;
        for (var i = 0; i < labels.Length; i++)
        {
            var predicted = scores[i] >= threshold;
            if (labels[i] == 1)
            {
                (tp, fn) = predicted ? (tp + 1, fn) : (tp, fn + 1);
            }
            else
            {
                (fp, tn) = predicted ? (fp + 1, tn) : (fp, tn + 1);
            }
        }

        foreach (var (name, successes, trials) in new[] { ("sensitivity", tp, tp + fn), ("specificity", tn, tn + fp), ("ppv", tp, tp + fp), ("npv", tn, tn + fn) })
        {
            if (trials > 0)
            {
                var (low, high) = Intervals.Wilson(successes, trials);
                figures.Metrics[name] = new Estimate((double)successes / trials, low, high);
                figures.Counts[name] = (successes, trials);
            }
        }

        return figures;
    }

    private static void WriteFigures(Utf8JsonWriter w, Figures? figures, int n)
    {
        if (figures is null)
        {
            w.WriteString("insufficient", $"performance needs at least {MinimumOutcomes} outcomes with both classes; this set has {n}");
            return;
        }

        w.WriteStartObject("metrics");
        foreach (var (name, estimate) in figures.Metrics)
        {
            Metric(w, name, estimate);
        }

        if (figures.Reliability is { } bins)
        {
            w.WriteStartArray("reliability");
            foreach (var bin in bins)
            {
                w.WriteStartObject();
                w.WriteNumber("low", bin.Low);
                w.WriteNumber("high", bin.High);
                w.WriteNumber("n", bin.Count);
                w.WriteNumber("mean_score", bin.MeanScore);
                w.WriteNumber("observed_rate", bin.ObservedRate);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteString("ece_binning", "10 equal-width bins on [0, 1], weighted by count (scikit-learn calibration_curve, strategy=uniform)");
        }

        w.WriteEndObject();
    }

    private static void WriteGaps(Utf8JsonWriter w, Figures group, Figures whole, Figures? rest, double margin)
    {
        w.WriteStartObject("gaps");
        foreach (var name in GapMetrics)
        {
            if (!group.Metrics.TryGetValue(name, out var mine) || !whole.Metrics.TryGetValue(name, out var all))
            {
                continue;
            }

            w.WriteStartObject(name);
            var gap = mine.Value - all.Value;
            w.WriteNumber("gap", gap);
            (double Difference, double Low, double High)? versusRest = null;
            if (rest is not null && name == "auroc")
            {
                var difference = group.Auroc.Auc - rest.Auroc.Auc;
                var half = MathNet.Numerics.Distributions.Normal.InvCDF(0, 1, 0.975) * Math.Sqrt(group.Auroc.Variance + rest.Auroc.Variance);
                versusRest = (difference, difference - half, difference + half);
            }
            else if (rest is not null && group.Counts.TryGetValue(name, out var g) && rest.Counts.TryGetValue(name, out var r))
            {
                versusRest = Intervals.NewcombeDifference(g.Successes, g.Trials, r.Successes, r.Trials);
            }

            if (versusRest is { } d)
            {
                w.WriteStartObject("versus_rest");
                w.WriteNumber("difference", d.Difference);
                w.WriteNumber("ci_low", d.Low);
                w.WriteNumber("ci_high", d.High);
                w.WriteEndObject();
            }

            w.WriteBoolean("flagged", gap < -margin && versusRest is { High: < 0 });
            w.WriteEndObject();
        }

        w.WriteEndObject();
    }

    /// <summary>Average precision with Boyd, Eng and Page's (2013) logit interval: logit(AP) ± z / sqrt(n+ AP (1 - AP)).</summary>
    private static Estimate AveragePrecisionWithInterval(double[] labels, double[] scores)
    {
        var ap = ClinicalMetrics.AveragePrecision(labels, scores);
        if (ap is <= 0 or >= 1)
        {
            return Point(ap);
        }

        var logit = Math.Log(ap / (1 - ap));
        var half = MathNet.Numerics.Distributions.Normal.InvCDF(0, 1, 0.975) / Math.Sqrt(labels.Sum() * ap * (1 - ap));
        return new Estimate(ap, 1 / (1 + Math.Exp(-(logit - half))), 1 / (1 + Math.Exp(-(logit + half))));
    }

    /// <summary>The Brier score with the t interval of the mean of the per-case squared errors.</summary>
    private static Estimate BrierWithInterval(double[] labels, double[] scores)
    {
        var brier = ClinicalMetrics.Brier(labels, scores);
        var errors = scores.Select((s, i) => (s - labels[i]) * (s - labels[i])).ToArray();
        var sd = Math.Sqrt(errors.Sum(e => (e - brier) * (e - brier)) / (errors.Length - 1));
        var half = RegressionMetrics.StudentQuantile(errors.Length - 1, 0.975) * sd / Math.Sqrt(errors.Length);
        return new Estimate(brier, Math.Max(0, brier - half), brier + half);
    }

    private static Estimate Point(double value) => new(value, double.NaN, double.NaN);

    private static void Metric(Utf8JsonWriter w, string name, Estimate estimate)
    {
        w.WriteStartObject(name);
        w.WriteNumber("value", estimate.Value);
        if (double.IsFinite(estimate.Low) && double.IsFinite(estimate.High))
        {
            w.WriteNumber("ci_low", estimate.Low);
            w.WriteNumber("ci_high", estimate.High);
        }

        w.WriteEndObject();
    }

    private static void Metric(Utf8JsonWriter w, string name, double value) => Metric(w, name, Point(value));

    private sealed class Figures
    {
        public Dictionary<string, Estimate> Metrics { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, (int Successes, int Trials)> Counts { get; } = new(StringComparer.Ordinal);

        public (double Auc, double Variance) Auroc { get; init; }

        public IReadOnlyList<ReliabilityBin>? Reliability { get; set; }
    }
}
