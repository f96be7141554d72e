using MedServe.Training.Metrics;

namespace MedServe.Tests.Training.Metrics;

/// <summary>Reference values are scikit-learn's roc_auc_score(labels, scores) (scikit-learn 1.2, Debian 12).</summary>
public sealed class BinaryMetricsTests
{
    private const double Tolerance = 1e-12;

    private static bool[] Labels(params int[] labels) => labels.Select(l => l == 1).ToArray();

    [Fact]
    public void Auroc_OneMisorderedPair_MatchesScikitLearn()
    {
        Assert.Equal(0.75, BinaryMetrics.Auroc([0.1, 0.4, 0.35, 0.8], Labels(0, 0, 1, 1)), Tolerance);
    }

    [Fact]
    public void Auroc_AllScoresTied_IsOneHalf()
    {
        Assert.Equal(0.5, BinaryMetrics.Auroc([0.5, 0.5, 0.5, 0.5], Labels(0, 1, 0, 1)), Tolerance);
    }

    [Fact]
    public void Auroc_TenSamples_MatchesScikitLearn()
    {
        double[] scores = [0.9, 0.8, 0.7, 0.6, 0.55, 0.54, 0.53, 0.52, 0.51, 0.505];

        // roc_auc_score gives 0.8400000000000001.
        Assert.Equal(0.84, BinaryMetrics.Auroc(scores, Labels(1, 1, 0, 1, 1, 0, 1, 0, 0, 0)), Tolerance);
    }

    [Fact]
    public void Auroc_TiesAcrossClasses_CountHalf_MatchesScikitLearn()
    {
        // roc_auc_score gives 0.7916666666666666 (= 9.5 / 12).
        Assert.Equal(0.7916666666666666, BinaryMetrics.Auroc([0.2, 0.2, 0.7, 0.7, 0.7, 0.1, 0.9], Labels(0, 1, 1, 0, 1, 0, 1)), Tolerance);
    }

    [Fact]
    public void Auroc_SeveralTieGroups_MatchesScikitLearn()
    {
        // roc_auc_score gives 0.7999999999999999 (= 12 / 15).
        Assert.Equal(0.8, BinaryMetrics.Auroc([0.3, 0.3, 0.1, 0.8, 0.8, 0.8, 0.05, 0.3], Labels(1, 0, 0, 1, 0, 1, 0, 0)), Tolerance);
    }

    [Fact]
    public void Auroc_WorseThanChance_MatchesScikitLearn()
    {
        // roc_auc_score gives 0.33333333333333337.
        Assert.Equal(1.0 / 3, BinaryMetrics.Auroc([1, 2, 3, 1, 2], Labels(0, 0, 0, 1, 1)), Tolerance);
    }

    [Fact]
    public void Auroc_PerfectAndReversedRanking_AreOneAndZero()
    {
        Assert.Equal(1.0, BinaryMetrics.Auroc([0.9, 0.8, 0.2, 0.1], Labels(1, 1, 0, 0)), Tolerance);
        Assert.Equal(0.0, BinaryMetrics.Auroc([0.1, 0.2, 0.8, 0.9], Labels(1, 1, 0, 0)), Tolerance);
    }

    [Fact]
    public void Auroc_DependsOnlyOnTheOrderOfScores()
    {
        double[] scores = [0.9, 0.8, 0.7, 0.6, 0.55, 0.54, 0.53, 0.52, 0.51, 0.505];
        var labels = Labels(1, 1, 0, 1, 1, 0, 1, 0, 0, 0);

        var logits = scores.Select(s => Math.Log(s / (1 - s)) * 3 + 7).ToArray();

        Assert.Equal(BinaryMetrics.Auroc(scores, labels), BinaryMetrics.Auroc(logits, labels), Tolerance);
    }

    [Fact]
    public void Auroc_AllPositives_IsAnArgumentException()
    {
        Assert.Throws<ArgumentException>(() => BinaryMetrics.Auroc([0.1, 0.9, 0.5], Labels(1, 1, 1)));
    }

    [Fact]
    public void Auroc_AllNegatives_IsAnArgumentException()
    {
        Assert.Throws<ArgumentException>(() => BinaryMetrics.Auroc([0.1, 0.9], Labels(0, 0)));
    }

    [Fact]
    public void Auroc_NoSamples_IsAnArgumentException()
    {
        Assert.Throws<ArgumentException>(() => BinaryMetrics.Auroc([], []));
    }

    [Fact]
    public void Auroc_ScoresAndLabelsOfDifferentLength_IsAnArgumentException()
    {
        var error = Assert.Throws<ArgumentException>(() => BinaryMetrics.Auroc([0.1, 0.9, 0.4], Labels(0, 1)));

        Assert.Contains("3 scores but 2 labels", error.Message);
    }
}
