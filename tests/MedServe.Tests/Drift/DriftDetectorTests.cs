using MedServe.Stats;
using MedServe.Stats.Drift;
using MedServe.Stats.Tests;

namespace MedServe.Tests.Drift;

/// <summary>The test each feature gets (Evidently's choice by reference size and kind), overrides, and the figures behind each.</summary>
public sealed class DriftDetectorTests
{
    [Fact]
    public void Each_feature_gets_its_kinds_test_by_the_references_size()
    {
        var random = new Random(4);
        double[] Numeric(int n) => [.. Enumerable.Range(0, n).Select(_ => random.NextDouble())];
        double[] Category(int n) => [.. Enumerable.Range(0, n).Select(_ => (double)random.Next(4))];
        double[] Binary(int n) => [.. Enumerable.Range(0, n).Select(_ => (double)random.Next(2))];

        Assert.Equal(["ks", "chisquare", "ztest"], new[] { Numeric(500), Category(500), Binary(500) }.Select((v, i) => DriftDetector.Choose(FeatureReference.Summarise($"f{i}", i, v))));
        Assert.Equal(["wasserstein", "jensenshannon", "jensenshannon"], new[] { Numeric(1500), Category(1500), Binary(1500) }.Select((v, i) => DriftDetector.Choose(FeatureReference.Summarise($"f{i}", i, v))));

        // Above 1000 rows the reference keeps 1000 quantiles, not its values.
        var large = FeatureReference.Summarise("x", 0, Numeric(5000));
        Assert.False(large.Complete);
        Assert.Equal(FeatureReference.ExactLimit, large.Values.Length);
    }

    [Fact]
    public void The_figures_are_the_engines_and_a_feature_can_be_given_another_test()
    {
        var random = new Random(6);
        var reference = Enumerable.Range(0, 400).Select(_ => new[] { random.NextDouble(), (double)random.Next(3), (double)random.Next(2) }).ToList();
        var current = Enumerable.Range(0, 300).Select(_ => new[] { random.NextDouble() + 0.1, (double)random.Next(3), random.NextDouble() < 0.7 ? 1.0 : 0.0 }).ToList();
        var summary = Enumerable.Range(0, 3).Select(f => FeatureReference.Summarise($"f{f}", f, [.. reference.Select(r => r[f])])).ToList();

        var report = DriftDetector.Detect(summary, reference, current, new DriftOptions { Multivariate = false });

        var ks = KolmogorovSmirnov.TwoSample([.. reference.Select(r => r[0])], [.. current.Select(r => r[0])]);
        Assert.Equal((ks.D, ks.P), (report.Features[0].Statistic, report.Features[0].PValue!.Value));
        var table = new[] { Enumerable.Range(0, 3).Select(c => (double)reference.Count(r => r[1] == c)).ToArray(), Enumerable.Range(0, 3).Select(c => (double)current.Count(r => r[1] == c)).ToArray() };
        Assert.Equal(HypothesisTests.Chi2Independence(table).P, report.Features[1].PValue!.Value, 12);
        var z = HypothesisTests.TwoProportionZTest([reference.Count(r => r[2] == 1), current.Count(r => r[2] == 1)], [400, 300]);
        Assert.Equal(z.P, report.Features[2].PValue!.Value, 12);
        Assert.Equal(MedServe.Stats.Design.Intervals.BenjaminiHochberg([ks.P, report.Features[1].PValue!.Value, z.P]), report.Features.Select(f => f.AdjustedPValue!.Value));
        Assert.True(report.Features[2].Drifted);
        Assert.Equal(0.05, report.FeatureAlpha);

        var custom = DriftDetector.Detect(summary, reference, current, new DriftOptions
        {
            Multivariate = false,
            Overrides = new Dictionary<string, FeatureOverride> { ["f0"] = new("wasserstein", 0.5) },
        });
        Assert.Equal(("wasserstein", 0.5, false), (custom.Features[0].Test, custom.Features[0].Threshold, custom.Features[0].Drifted));
        Assert.Null(custom.Features[0].PValue);

        var unknown = Assert.Throws<StatisticsException>(() => DriftDetector.Detect(summary, reference, current, new DriftOptions
        {
            Overrides = new Dictionary<string, FeatureOverride> { ["f1"] = new("t-test", null) },
        }));
        Assert.Contains("feature 'f1': unknown test 't-test'", unknown.Message);
    }
}
