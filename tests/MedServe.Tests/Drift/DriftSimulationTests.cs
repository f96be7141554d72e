using MedServe.Stats.Drift;

namespace MedServe.Tests.Drift;

/// <summary>
/// Honest alarms, by seeded simulation: a reference of 500 rows of 5 features (features 0 and 1
/// correlated at 0.8), then windows of 500 rows. Undrifted windows alarm at most at alpha (within
/// its binomial 95% interval); a mean shift of 0.5 SD in one feature, and a flip of the
/// correlation that leaves every marginal as it was, are each detected in at least 90% of windows.
/// </summary>
public sealed class DriftSimulationTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int Features = 5;
    private const double Alpha = 0.05;

    [Fact]
    public void Undrifted_windows_alarm_at_most_at_alpha()
    {
        var (summary, rows) = Reference(1);
        var alarms = Windows(200, seed => Sample(new Random(seed), 500, correlation: 0.8)).Count(w => Detect(summary, rows, w).DriftDetected);

        var upper = UpperQuantile(Alpha, 200);
        output.WriteLine($"undrifted: {alarms} of 200 windows alarmed (binomial 95% upper bound at alpha {Alpha}: {upper})");
        Assert.True(alarms <= upper, $"{alarms} of 200 undrifted windows alarmed; at alpha {Alpha} the binomial 95% interval ends at {upper}");
    }

    [Fact]
    public void A_half_sd_mean_shift_in_one_feature_is_detected_in_90_percent_of_windows()
    {
        var (summary, rows) = Reference(2);
        var reports = Windows(100, seed => Sample(new Random(seed), 500, correlation: 0.8, shiftFeature: 3, shift: 0.5)).Select(w => Detect(summary, rows, w)).ToList();

        output.WriteLine($"mean shift: {reports.Count(r => r.DriftDetected)} of 100 windows detected it, {reports.Count(r => r.Features[3].Drifted)} named the feature");
        Assert.True(reports.Count(r => r.DriftDetected) >= 90, $"{reports.Count(r => r.DriftDetected)} of 100 windows detected the shift");
        Assert.True(reports.Count(r => r.Features[3].Drifted) >= 90);
        Assert.Equal("ks", reports[0].Features[3].Test);
    }

    [Fact]
    public void A_correlation_flip_no_single_feature_shows_is_caught_by_the_multivariate_test()
    {
        var (summary, rows) = Reference(3);
        var reports = Windows(100, seed => Sample(new Random(seed), 500, correlation: -0.8)).Select(w => Detect(summary, rows, w)).ToList();

        output.WriteLine($"correlation flip: the multivariate test caught it in {reports.Count(r => r.MultivariateDrift)} of 100 windows; a single feature in {reports.Count(r => r.DriftedFeatures > 0)}");
        Assert.True(reports.Count(r => r.MultivariateDrift) >= 90, $"{reports.Count(r => r.MultivariateDrift)} of 100 windows caught the flip");
        // The marginals did not move: the per-feature family alarms no more than chance allows.
        Assert.True(reports.Count(r => r.DriftedFeatures > 0) <= UpperQuantile(Alpha / 2, 100));
    }

    /// <summary>The 97.5% quantile of Binomial(n, p): the top of its 95% interval.</summary>
    private static int UpperQuantile(double p, int n)
    {
        var k = 0;
        while (MathNet.Numerics.Distributions.Binomial.CDF(p, n, k) < 0.975)
        {
            k++;
        }

        return k;
    }

    private static DriftReport Detect(IReadOnlyList<FeatureReference> summary, IReadOnlyList<double[]> rows, IReadOnlyList<double[]> window) =>
        DriftDetector.Detect(summary, rows, window, new DriftOptions { Alpha = Alpha, Permutations = 100 });

    private static (IReadOnlyList<FeatureReference> Summary, IReadOnlyList<double[]> Rows) Reference(int seed)
    {
        var rows = Sample(new Random(seed), 500, correlation: 0.8);
        return ([.. Enumerable.Range(0, Features).Select(f => FeatureReference.Summarise($"f{f}", f, [.. rows.Select(r => r[f])]))], rows);
    }

    /// <summary>Windows drawn from seeds 1000 on, judged on both cores.</summary>
    private static IReadOnlyList<double[]>[] Windows(int count, Func<int, IReadOnlyList<double[]>> draw)
    {
        var windows = new IReadOnlyList<double[]>[count];
        Parallel.For(0, count, i => windows[i] = draw(1000 + i));
        return windows;
    }

    private static List<double[]> Sample(Random random, int n, double correlation, int shiftFeature = -1, double shift = 0)
    {
        var rows = new List<double[]>(n);
        for (var i = 0; i < n; i++)
        {
            var row = new double[Features];
            for (var f = 0; f < Features; f++)
            {
                row[f] = MathNet.Numerics.Distributions.Normal.Sample(random, 0, 1);
            }

            // Features 0 and 1: standard normals with the given correlation.
            row[1] = (correlation * row[0]) + (Math.Sqrt(1 - (correlation * correlation)) * row[1]);
            if (shiftFeature >= 0)
            {
                row[shiftFeature] += shift;
            }

            rows.Add(row);
        }

        return rows;
    }
}
