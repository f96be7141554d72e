using System.Text.Json;
using MedServe.Stats;

namespace MedServe.Tests.Stats;

/// <summary>
/// Every statistic against scipy 1.10 / statsmodels 0.13 / scikit-learn 1.2, on 20 fixed cases each
/// (reference.json, written by make_reference.py with Debian's packages): 1e-9 relative, 1e-6 for
/// the iterative fits.
/// </summary>
public sealed class StatisticsReferenceTests
{
    private static readonly JsonElement Cases = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Stats", "reference.json"))).RootElement.GetProperty("cases");

    public static TheoryData<string, int> Each()
    {
        var data = new TheoryData<string, int>();
        foreach (var kind in StatisticsKinds.Names.Where(n => n != "estimated_auroc"))
        {
            for (var k = 0; k < Cases.GetArrayLength(); k++)
            {
                data.Add(kind, k);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Each))]
    public void Each_statistic_equals_its_reference(string kind, int k)
    {
        var reference = Cases[k].GetProperty(kind);
        var result = StatisticsKinds.Run(kind, reference.GetProperty("in"));

        foreach (var expected in reference.GetProperty("out").EnumerateObject())
        {
            var tolerance = expected.Name.StartsWith("calibration_", StringComparison.Ordinal) || expected.Name == "n_per_arm" ? 1e-6 : 1e-9;
            var actual = result[expected.Name];
            if (expected.Value.ValueKind == JsonValueKind.Array)
            {
                var values = (double[])actual;
                Assert.Equal(expected.Value.GetArrayLength(), values.Length);
                for (var i = 0; i < values.Length; i++)
                {
                    Close(expected.Value[i].GetDouble(), values[i], tolerance, $"{kind} case {k} {expected.Name}[{i}]");
                }
            }
            else
            {
                // A t interval's bound is held to 1e-8 of its half-width: scipy's t quantile (cephes stdtrit) is itself
                // only good to about 2e-9 (t.cdf(t.ppf(0.975, 46), 46) is 0.975 - 2e-10), and a bound near 0 cannot be held relative to itself.
                var scale = Math.Abs(expected.Value.GetDouble());
                var point = expected.Name.Replace("_ci_low", "", StringComparison.Ordinal).Replace("_ci_high", "", StringComparison.Ordinal);
                if (point != expected.Name && reference.GetProperty("out").TryGetProperty(point, out var estimate))
                {
                    scale = Math.Max(scale, Math.Abs(expected.Value.GetDouble() - estimate.GetDouble()));
                    tolerance = kind == "regression_metrics" ? 1e-8 : tolerance;
                }

                Close(expected.Value.GetDouble(), Convert.ToDouble(actual, System.Globalization.CultureInfo.InvariantCulture), tolerance * scale / Math.Max(Math.Abs(expected.Value.GetDouble()), 1e-300), $"{kind} case {k} {expected.Name}");
            }
        }
    }

    /// <summary>scipy's <c>kstwo.sf(x, n)</c> on a grid reaching each of its methods (exact sums, Durbin, Pomeranz, Pelz-Good, Smirnov).</summary>
    [Fact]
    public void The_kolmogorov_distribution_equals_scipy_in_every_branch()
    {
        var grid = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Stats", "reference.json"))).RootElement.GetProperty("kstwo");
        Assert.True(grid.GetArrayLength() > 100);
        foreach (var point in grid.EnumerateArray())
        {
            var (n, x) = (point.GetProperty("n").GetInt32(), point.GetProperty("x").GetDouble());
            Close(point.GetProperty("sf").GetDouble(), MedServe.Stats.Tests.KolmogorovSmirnov.TwoSidedSurvival(n, x), 1e-9, $"kstwo.sf({x}, {n})");
        }
    }

    /// <summary>
    /// The estimate before outcomes, on simulated cohorts whose truth is known: labels drawn as
    /// Bernoulli(score) (a calibrated model) give an AUROC the estimate matches; labels drawn as
    /// Bernoulli(score^3) (a model that overestimates risk) do not, which is the stated assumption.
    /// </summary>
    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(13)]
    public void The_estimated_auroc_matches_a_calibrated_cohort_and_misses_a_miscalibrated_one(int seed)
    {
        var random = new Random(seed);
        var scores = Enumerable.Range(0, 20_000).Select(_ => MathNet.Numerics.Distributions.Beta.Sample(random, 2, 5)).ToArray();
        var calibrated = scores.Select(s => random.NextDouble() < s ? 1.0 : 0.0).ToArray();
        var overconfident = scores.Select(s => random.NextDouble() < s * s * s ? 1.0 : 0.0).ToArray();

        var estimate = MedServe.Stats.Clinical.Calibration.EstimatedAuroc(scores);

        Assert.InRange(estimate - MedServe.Stats.Clinical.ClinicalMetrics.Auroc(calibrated, scores), -0.01, 0.01);
        Assert.True(Math.Abs(estimate - MedServe.Stats.Clinical.ClinicalMetrics.Auroc(overconfident, scores)) > 0.03);
    }

    [Theory]
    [InlineData("welch_ttest", """{"a":[],"b":[1,2]}""", "'a' needs at least 2 values")]
    [InlineData("mann_whitney_u", """{"a":[1,2]}""", "'b' is required")]
    [InlineData("clinical_metrics", """{"labels":[1,1,1],"scores":[0.2,0.4,0.6]}""", "'labels' are all 1")]
    [InlineData("clinical_metrics", """{"labels":[1,0],"scores":[0.2]}""", "'labels' has 2 values and 'scores' 1")]
    [InlineData("jensen_shannon_distance", """{"p":[0.5,0.6],"q":[0.5,0.5]}""", "'p' is a probability vector: it must sum to 1")]
    [InlineData("psi", """{"expected":[0.5,0.5],"actual":[0.2,0.8],"epsilon":0}""", "'epsilon'")]
    [InlineData("two_proportion_ztest", """{"successes":[5,3],"trials":[4,10]}""", "group 0")]
    [InlineData("chi2_independence", """{"table":[[1,2],[3]]}""", "row 1 has 1 cells")]
    [InlineData("welch_ttest", """{"a":[1,"x"],"b":[1,2]}""", "'a'[1] is not a number")]
    [InlineData("no_such_thing", "{}", "unknown statistic 'no_such_thing'")]
    public void Bad_inputs_are_refused_naming_the_field(string kind, string input, string message)
    {
        using var json = JsonDocument.Parse(input);
        var error = Assert.Throws<StatisticsException>(() => StatisticsKinds.Run(kind, json.RootElement));
        Assert.Contains(message, error.Message);
    }

    private static void Close(double expected, double actual, double relative, string what) =>
        Assert.True(Math.Abs(expected - actual) <= relative * Math.Max(Math.Abs(expected), 1e-300) || Math.Abs(expected - actual) < 1e-300,
            $"{what}: expected {expected:R}, got {actual:R} (relative {Math.Abs(expected - actual) / Math.Abs(expected):E2})");
}
