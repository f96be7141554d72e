using MedServe.Stats.Design;
using MedServe.Stats.Distances;
using MedServe.Stats.Tests;

namespace MedServe.Stats.Drift;

/// <summary>A feature's test and threshold, in place of the one its kind and the reference's size choose.</summary>
public sealed record FeatureOverride(string? Test, double? Threshold);

/// <summary>
/// How a window is judged. <see cref="Alpha"/> is the whole window's false-alarm rate: with the
/// multivariate test on, it is split in two (Bonferroni), half for the per-feature family
/// (Benjamini-Hochberg across features) and half for the multivariate test.
/// </summary>
public sealed record DriftOptions
{
    public double Alpha { get; init; } = 0.05;

    /// <summary>Evidently's default: the dataset drifts when at least this share of its features do.</summary>
    public double DriftShare { get; init; } = 0.5;

    public IReadOnlyDictionary<string, FeatureOverride> Overrides { get; init; } = new Dictionary<string, FeatureOverride>();

    public bool Multivariate { get; init; } = true;

    public int Permutations { get; init; } = 200;

    public int Seed { get; init; } = 17;
}

public sealed record FeatureDrift(string Name, int Index, FeatureKind Kind, string Test, double Statistic, double? PValue, double? AdjustedPValue,
    double Threshold, bool Drifted, double? Psi, int ReferenceCount, int CurrentCount);

public sealed record DriftReport(IReadOnlyList<FeatureDrift> Features, string Correction, double Alpha, double FeatureAlpha, int DriftedFeatures,
    double DriftedShare, double DriftShare, bool DatasetDrift, MaximumMeanDiscrepancy.Result? Multivariate, bool MultivariateDrift)
{
    /// <summary>The window's alarm: a feature drifted (after the correction) or the multivariate test rejected; at most alpha under no drift.</summary>
    public bool DriftDetected => DriftedFeatures > 0 || MultivariateDrift;
}

/// <summary>
/// Drift of a window of rows against a reference, feature by feature, with the test chosen as
/// Evidently chooses it. A reference of at most 1000 rows gets statistical tests: KS for numeric
/// features, chi-square of the 2-by-k table for categorical ones, the two-proportion z-test for
/// binary ones, with the Benjamini-Hochberg correction across features. A larger reference gets
/// distances with threshold 0.1: Wasserstein normed by the reference's standard deviation for
/// numeric features, Jensen-Shannon for the others. PSI is given for every numeric feature, and
/// the MMD test looks at the rows as a whole.
/// </summary>
public static class DriftDetector
{
    public static readonly IReadOnlyList<string> TestNames = ["ks", "chisquare", "ztest", "wasserstein", "jensenshannon", "psi"];

    public const double PsiEpsilon = 1e-4;

    public static DriftReport Detect(IReadOnlyList<FeatureReference> reference, IReadOnlyList<double[]> referenceRows, IReadOnlyList<double[]> current, DriftOptions options)
    {
        if (current.Count < 2)
        {
            throw new StatisticsException($"a drift window needs at least 2 rows; this one has {current.Count}");
        }

        if (current.Any(r => r.Length != reference.Count))
        {
            throw new StatisticsException($"every current row must hold the reference's {reference.Count} features");
        }

        var featureAlpha = options.Multivariate ? options.Alpha / 2 : options.Alpha;
        var raw = new List<(FeatureReference Feature, string Test, double Statistic, double? P, double Threshold, double? Psi)>();
        for (var f = 0; f < reference.Count; f++)
        {
            var feature = reference[f];
            var values = current.Select(r => r[f]).Where(double.IsFinite).ToArray();
            options.Overrides.TryGetValue(feature.Name, out var custom);
            var test = custom?.Test ?? Choose(feature);
            var (statistic, p, threshold) = Run(test, feature, values, custom?.Threshold);
            double? psi = feature.Kind == FeatureKind.Numeric && values.Length > 0
                ? DistributionDistances.Psi(feature.BinProportions, FeatureReference.Proportions(feature.BinEdges, values), PsiEpsilon)
                : null;
            raw.Add((feature, test, statistic, p, threshold, psi));
        }

        var pValues = raw.Where(r => r.P is not null).Select(r => r.P!.Value).ToArray();
        var adjusted = pValues.Length > 0 ? Intervals.BenjaminiHochberg(pValues) : [];
        var next = 0;
        var features = raw.Select(r =>
        {
            double? q = r.P is null ? null : adjusted[next++];
            var drifted = q is { } adjustedP ? adjustedP < featureAlpha : r.Statistic >= r.Threshold;
            var count = current.Count(row => double.IsFinite(row[r.Feature.Index]));
            return new FeatureDrift(r.Feature.Name, r.Feature.Index, r.Feature.Kind, r.Test, r.Statistic, r.P, q, q is null ? r.Threshold : featureAlpha, drifted, r.Psi, r.Feature.Count, count);
        }).ToList();

        MaximumMeanDiscrepancy.Result? multivariate = null;
        if (options.Multivariate && referenceRows.Count >= 2)
        {
            multivariate = MaximumMeanDiscrepancy.Test(referenceRows, [.. current.Where(r => r.All(double.IsFinite))], permutations: options.Permutations, seed: options.Seed);
        }

        var driftedCount = features.Count(f => f.Drifted);
        var share = features.Count == 0 ? 0 : (double)driftedCount / features.Count;
        return new DriftReport(features, "benjamini-hochberg", options.Alpha, featureAlpha, driftedCount, share, options.DriftShare,
            share >= options.DriftShare, multivariate, multivariate is { } m && m.PValue < options.Alpha / 2);
    }

    /// <summary>Evidently's choice by reference size and feature kind.</summary>
    public static string Choose(FeatureReference feature) => (feature.Count <= FeatureReference.ExactLimit, feature.Kind) switch
    {
        (true, FeatureKind.Numeric) => "ks",
        (true, FeatureKind.Categorical) => "chisquare",
        (true, FeatureKind.Binary) => "ztest",
        (false, FeatureKind.Numeric) => "wasserstein",
        _ => "jensenshannon",
    };

    private static (double Statistic, double? P, double Threshold) Run(string test, FeatureReference feature, double[] values, double? threshold)
    {
        if (values.Length < 2)
        {
            throw new StatisticsException($"feature '{feature.Name}': the window has fewer than 2 finite values");
        }

        switch (test)
        {
            case "ks":
                var (d, p) = KolmogorovSmirnov.TwoSample(feature.Values, values);
                return (d, p, threshold ?? double.NaN);
            case "chisquare":
            {
                var categories = feature.Categories.Keys.Concat(values).Distinct().Order().ToArray();
                if (categories.Length < 2)
                {
                    return (0, 1, threshold ?? double.NaN);
                }

                var table = new[]
                {
                    categories.Select(c => (double)feature.Categories.GetValueOrDefault(c)).ToArray(),
                    categories.Select(c => (double)values.Count(v => v == c)).ToArray(),
                };
                var (chi2, pc, _) = HypothesisTests.Chi2Independence(table);
                return (chi2, pc, threshold ?? double.NaN);
            }

            case "ztest":
            {
                double referenceOnes = feature.Categories.GetValueOrDefault(1.0), currentOnes = values.Count(v => v == 1);
                var pooled = (referenceOnes + currentOnes) / (feature.Count + values.Length);
                if (pooled is 0 or 1)
                {
                    return (0, 1, threshold ?? double.NaN);
                }

                var (z, pz) = HypothesisTests.TwoProportionZTest([referenceOnes, currentOnes], [feature.Count, values.Length]);
                return (z, pz, threshold ?? double.NaN);
            }

            case "wasserstein":
                var scale = feature.StdDev > 0 ? feature.StdDev : 1;
                return (DistributionDistances.Wasserstein(feature.Values, values) / scale, null, threshold ?? 0.1);
            case "jensenshannon":
            {
                double[] expected, actual;
                if (feature.Kind == FeatureKind.Numeric)
                {
                    (expected, actual) = (feature.BinProportions, FeatureReference.Proportions(feature.BinEdges, values));
                }
                else
                {
                    var categories = feature.Categories.Keys.Concat(values).Distinct().Order().ToArray();
                    expected = [.. categories.Select(c => (double)feature.Categories.GetValueOrDefault(c) / feature.Count)];
                    actual = [.. categories.Select(c => (double)values.Count(v => v == c) / values.Length)];
                }

                return (DistributionDistances.JensenShannon(expected, actual), null, threshold ?? 0.1);
            }

            case "psi":
                return (DistributionDistances.Psi(feature.BinProportions, FeatureReference.Proportions(feature.BinEdges, values), PsiEpsilon), null, threshold ?? 0.1);
            default:
                throw new StatisticsException($"feature '{feature.Name}': unknown test '{test}' (the tests are {string.Join(", ", TestNames)})");
        }
    }
}
