using System.Text.Json;
using MedServe.Stats.Clinical;
using MedServe.Stats.Design;
using MedServe.Stats.Distances;
using MedServe.Stats.Tests;

namespace MedServe.Stats;

/// <summary>
/// The engine's one entrance for the CLI (<c>medserve stats KIND</c>) and the API (POST
/// /v1/statistics/{kind}): a kind's name, a JSON object of inputs, a JSON object of results.
/// Bad inputs are a <see cref="StatisticsException"/> naming the field, never NaN in an answer.
/// </summary>
public static class StatisticsKinds
{
    public static readonly IReadOnlyList<string> Names =
    [
        "two_proportion_ztest", "welch_ttest", "mann_whitney_u", "chi2_independence", "srm_chi2", "wasserstein",
        "jensen_shannon_distance", "psi", "clinical_metrics", "sample_size_two_proportions", "wilson_interval",
        "holm", "benjamini_hochberg", "calibration_bins", "estimated_auroc", "ks_2samp", "sample_size_ttest", "regression_metrics",
        "proportion_difference", "roc_curve",
    ];

    public static IReadOnlyDictionary<string, object> Run(string kind, JsonElement input)
    {
        if (input.ValueKind != JsonValueKind.Object)
        {
            throw new StatisticsException("the inputs must be one JSON object");
        }

        IReadOnlyDictionary<string, object> result = kind switch
        {
            "two_proportion_ztest" => Pack(HypothesisTests.TwoProportionZTest(Array(input, "successes"), Array(input, "trials")), r => new() { ["z"] = r.Z, ["p"] = r.P }),
            "welch_ttest" => Pack(HypothesisTests.WelchTTest(Array(input, "a"), Array(input, "b")), r => new() { ["t"] = r.T, ["p"] = r.P, ["df"] = r.Df }),
            "mann_whitney_u" => Pack(HypothesisTests.MannWhitneyU(Array(input, "a"), Array(input, "b")), r => new() { ["u"] = r.U, ["p"] = r.P }),
            "chi2_independence" => Pack(HypothesisTests.Chi2Independence(Table(input, "table")), r => new() { ["chi2"] = r.Chi2, ["p"] = r.P, ["dof"] = r.Dof }),
            "srm_chi2" => Pack(HypothesisTests.SampleRatioMismatch(Array(input, "counts"), Array(input, "weights")), r => new() { ["chi2"] = r.Chi2, ["p"] = r.P }),
            "wasserstein" => new Dictionary<string, object> { ["distance"] = DistributionDistances.Wasserstein(Array(input, "reference"), Array(input, "current")) },
            "jensen_shannon_distance" => new Dictionary<string, object> { ["distance_base2"] = DistributionDistances.JensenShannon(Array(input, "p"), Array(input, "q")) },
            "psi" => new Dictionary<string, object> { ["psi"] = DistributionDistances.Psi(Array(input, "expected"), Array(input, "actual"), Number(input, "epsilon", 1e-4)) },
            "clinical_metrics" => Clinical(Array(input, "labels"), Array(input, "scores")),
            "sample_size_two_proportions" => new Dictionary<string, object>
            {
                ["n_per_arm"] = Intervals.SampleSizeTwoProportions(Number(input, "p1"), Number(input, "p2"), Number(input, "alpha", 0.05), Number(input, "power", 0.8)),
            },
            "wilson_interval" => Pack(Intervals.Wilson(Number(input, "successes"), Number(input, "trials"), Number(input, "alpha", 0.05)), r => new() { ["low"] = r.Low, ["high"] = r.High }),
            "holm" => new Dictionary<string, object> { ["adjusted"] = Intervals.Holm(Array(input, "p_values")) },
            "benjamini_hochberg" => new Dictionary<string, object> { ["adjusted"] = Intervals.BenjaminiHochberg(Array(input, "p_values")) },
            "calibration_bins" => Bins(Calibration.ExpectedCalibrationError(Array(input, "labels"), Array(input, "scores"), (int)Number(input, "bins", 10))),
            "estimated_auroc" => new Dictionary<string, object> { ["auroc"] = Calibration.EstimatedAuroc(Array(input, "scores")), ["assumption"] = "the scores are calibrated on this population" },
            "ks_2samp" => Pack(KolmogorovSmirnov.TwoSample(Array(input, "reference"), Array(input, "current")), r => new() { ["d"] = r.D, ["p"] = r.P }),
            "sample_size_ttest" => new Dictionary<string, object>
            {
                ["n_per_arm"] = Intervals.SampleSizeTTest(Number(input, "cohens_d"), Number(input, "alpha", 0.05), Number(input, "power", 0.8)),
            },
            "regression_metrics" => Pack(RegressionMetrics.Compute(Array(input, "values"), Array(input, "predictions")), r => new()
            {
                ["n"] = r.N,
                ["mae"] = r.MeanAbsoluteError.Value, ["mae_ci_low"] = r.MeanAbsoluteError.Low, ["mae_ci_high"] = r.MeanAbsoluteError.High,
                ["mean_error"] = r.MeanError.Value, ["mean_error_ci_low"] = r.MeanError.Low, ["mean_error_ci_high"] = r.MeanError.High,
                ["rmse"] = r.RootMeanSquaredError, ["r2"] = r.RSquared,
            }),
            "roc_curve" => Pack(ClinicalMetrics.RocCurve(Array(input, "labels"), Array(input, "scores")), r => new() { ["fpr"] = r.Fpr, ["tpr"] = r.Tpr }),
            "proportion_difference" => ProportionDifference(Array(input, "successes"), Array(input, "trials")),
            _ => throw new StatisticsException($"unknown statistic '{(kind.Length > 40 ? kind[..40] : kind)}'; the kinds are {string.Join(", ", Names)}"),
        };

        foreach (var (name, value) in result)
        {
            if (value is double d && !double.IsFinite(d))
            {
                throw new StatisticsException($"the inputs give no finite '{name}'");
            }
        }

        return result;
    }

    private static Dictionary<string, object> Clinical(double[] labels, double[] scores)
    {
        var auroc = ClinicalMetrics.AurocWithInterval(labels, scores);
        var (intercept, slope) = ClinicalMetrics.CalibrationFitWithIntervals(labels, scores);
        return new Dictionary<string, object>
        {
            ["auroc"] = auroc.Value,
            ["auroc_ci_low"] = auroc.Low,
            ["auroc_ci_high"] = auroc.High,
            ["auprc"] = ClinicalMetrics.AveragePrecision(labels, scores),
            ["brier"] = ClinicalMetrics.Brier(labels, scores),
            ["calibration_intercept"] = intercept.Value,
            ["calibration_intercept_ci_low"] = intercept.Low,
            ["calibration_intercept_ci_high"] = intercept.High,
            ["calibration_slope"] = slope.Value,
            ["calibration_slope_ci_low"] = slope.Low,
            ["calibration_slope_ci_high"] = slope.High,
        };
    }

    private static Dictionary<string, object> ProportionDifference(double[] successes, double[] trials)
    {
        if (successes.Length != 2 || trials.Length != 2)
        {
            throw new StatisticsException("'successes' and 'trials' must each hold 2 counts (first group, second group)");
        }

        var (difference, low, high) = Intervals.NewcombeDifference(successes[0], trials[0], successes[1], trials[1]);
        return new() { ["difference"] = difference, ["low"] = low, ["high"] = high };
    }

    private static Dictionary<string, object> Bins((double Ece, IReadOnlyList<ReliabilityBin> Bins) result) => new()
    {
        ["ece"] = result.Ece,
        ["mean_score"] = result.Bins.Select(b => b.MeanScore).ToArray(),
        ["observed_rate"] = result.Bins.Select(b => b.ObservedRate).ToArray(),
        ["count"] = result.Bins.Select(b => (double)b.Count).ToArray(),
    };

    private static Dictionary<string, object> Pack<T>(T value, Func<T, Dictionary<string, object>> fields) => fields(value);

    private static double[] Array(JsonElement input, string field)
    {
        if (!input.TryGetProperty(field, out var value) || value.ValueKind != JsonValueKind.Array)
        {
            throw new StatisticsException($"'{field}' is required: an array of numbers");
        }

        var numbers = new double[value.GetArrayLength()];
        var i = 0;
        foreach (var item in value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetDouble(out numbers[i]))
            {
                throw new StatisticsException($"'{field}'[{i}] is not a number");
            }

            i++;
        }

        return numbers;
    }

    private static double[][] Table(JsonElement input, string field)
    {
        if (!input.TryGetProperty(field, out var value) || value.ValueKind != JsonValueKind.Array)
        {
            throw new StatisticsException($"'{field}' is required: an array of rows of counts");
        }

        return [.. value.EnumerateArray().Select((row, r) => row.ValueKind == JsonValueKind.Array
            ? row.EnumerateArray().Select((cell, c) => cell.ValueKind == JsonValueKind.Number ? cell.GetDouble() : throw new StatisticsException($"'{field}'[{r}][{c}] is not a number")).ToArray()
            : throw new StatisticsException($"'{field}'[{r}] is not an array of counts"))];
    }

    private static double Number(JsonElement input, string field, double? fallback = null)
    {
        if (!input.TryGetProperty(field, out var value))
        {
            return fallback ?? throw new StatisticsException($"'{field}' is required: a number");
        }

        return value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out var number)
            ? number
            : throw new StatisticsException($"'{field}' must be a number");
    }
}
