namespace MedServe.Stats.Clinical;

/// <summary>One bin of a reliability curve: its score range, count, mean score and observed rate.</summary>
public sealed record ReliabilityBin(double Low, double High, int Count, double MeanScore, double ObservedRate);

/// <summary>
/// Calibration seen two ways: the expected calibration error over equal-width bins (with the
/// reliability curve it is read from), and, before any outcome arrives, performance estimated
/// from the scores alone (confidence-based performance estimation, as NannyML's CBPE does).
/// </summary>
public static class Calibration
{
    /// <summary>
    /// ECE over <paramref name="bins"/> equal-width bins of [0, 1] (a score of 1 falls in the last):
    /// the count-weighted mean of |mean score - observed rate|. The bins are those of scikit-learn's
    /// <c>calibration_curve(strategy="uniform")</c>; empty bins are left out.
    /// </summary>
    public static (double Ece, IReadOnlyList<ReliabilityBin> Bins) ExpectedCalibrationError(IReadOnlyList<double> labels, IReadOnlyList<double> scores, int bins = 10)
    {
        ClinicalMetrics.Check(labels, scores);
        if (bins is < 2 or > 1000)
        {
            throw new StatisticsException($"'bins' must be from 2 to 1000, not {bins}");
        }

        if (scores.Any(s => s is < 0 or > 1))
        {
            throw new StatisticsException("'scores' must be probabilities from 0 to 1");
        }

        // The inner edges as numpy's linspace(0, 1, bins + 1) makes them (k * step), and a score on an
        // edge falls in the bin below it (searchsorted, side "left"), as calibration_curve bins.
        var step = 1.0 / bins;
        var edges = Enumerable.Range(1, bins - 1).Select(k => k * step).ToArray();
        var count = new int[bins];
        var scoreSum = new double[bins];
        var labelSum = new double[bins];
        for (var i = 0; i < scores.Count; i++)
        {
            var bin = 0;
            while (bin < edges.Length && edges[bin] < scores[i])
            {
                bin++;
            }

            count[bin]++;
            scoreSum[bin] += scores[i];
            labelSum[bin] += labels[i];
        }

        var curve = new List<ReliabilityBin>();
        double ece = 0;
        for (var b = 0; b < bins; b++)
        {
            if (count[b] == 0)
            {
                continue;
            }

            var meanScore = scoreSum[b] / count[b];
            var observed = labelSum[b] / count[b];
            curve.Add(new ReliabilityBin(b * step, b == bins - 1 ? 1 : (b + 1) * step, count[b], meanScore, observed));
            ece += (double)count[b] / scores.Count * Math.Abs(meanScore - observed);
        }

        return (ece, curve);
    }

    /// <summary>
    /// The AUROC a calibrated classifier's scores imply, without labels: each case counts as a
    /// positive with probability equal to its score, so the expected positive mass above a
    /// threshold is the sum of the scores above it, and the expected ROC curve follows; its area is
    /// the estimate. Valid only if the model is calibrated on the current population (the
    /// assumption is reported with the figure).
    /// </summary>
    public static double EstimatedAuroc(IReadOnlyList<double> scores)
    {
        Require.NonEmpty(scores, "scores", 2);
        if (scores.Any(s => s is < 0 or > 1))
        {
            throw new StatisticsException("'scores' must be probabilities from 0 to 1");
        }

        var positives = scores.Sum();
        var negatives = scores.Count - positives;
        if (!(positives > 0) || !(negatives > 0))
        {
            throw new StatisticsException("'scores' are all 0 or all 1: no expected positives or negatives");
        }

        // Expected pairs: a (positive, negative) pair is ordered right when the positive scores higher; ties count half.
        var ordered = scores.Order().ToArray();
        double negativeBelow = 0, concordant = 0;
        for (var i = 0; i < ordered.Length;)
        {
            var j = i;
            double groupPositive = 0, groupNegative = 0;
            while (j < ordered.Length && ordered[j] == ordered[i])
            {
                groupPositive += ordered[j];
                groupNegative += 1 - ordered[j];
                j++;
            }

            // Within a case its own positive and negative halves are not a pair.
            double selfPairs = 0;
            for (var k = i; k < j; k++)
            {
                selfPairs += ordered[k] * (1 - ordered[k]);
            }

            concordant += (groupPositive * negativeBelow) + (0.5 * ((groupPositive * groupNegative) - selfPairs));
            negativeBelow += groupNegative;
            i = j;
        }

        double allSelfPairs = 0;
        foreach (var s in scores)
        {
            allSelfPairs += s * (1 - s);
        }

        return concordant / ((positives * negatives) - allSelfPairs);
    }
}
