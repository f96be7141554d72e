using MathNet.Numerics.Distributions;

namespace MedServe.Stats.Clinical;

/// <summary>A figure with its 95% interval.</summary>
public sealed record Estimate(double Value, double Low, double High);

/// <summary>
/// A classifier's performance against outcomes: AUROC (with DeLong's interval), average precision,
/// Brier score, and the logistic recalibration fit, each as scikit-learn / statsmodels compute it.
/// </summary>
public static class ClinicalMetrics
{
    public static void Check(IReadOnlyList<double> labels, IReadOnlyList<double> scores)
    {
        Require.SameLength(labels.Count, "labels", scores.Count, "scores");
        Require.NonEmpty(labels, "labels", 2);
        Require.NonEmpty(scores, "scores", 2);
        if (labels.Any(l => l is not (0 or 1)))
        {
            throw new StatisticsException("'labels' must each be 0 or 1");
        }

        if (labels.All(l => l == labels[0]))
        {
            throw new StatisticsException($"'labels' are all {labels[0]}: the metrics need both outcomes");
        }
    }

    /// <summary>scikit-learn <c>roc_auc_score</c>: the chance a positive outranks a negative, ties counting half.</summary>
    public static double Auroc(IReadOnlyList<double> labels, IReadOnlyList<double> scores)
    {
        Check(labels, scores);
        var (positives, negatives) = Split(labels, scores);
        return Placements(positives, negatives).Auc;
    }

    /// <summary>AUROC with DeLong's variance (DeLong, DeLong and Clarke-Pearson 1988) and a normal 95% interval, clipped to [0, 1].</summary>
    public static Estimate AurocWithInterval(IReadOnlyList<double> labels, IReadOnlyList<double> scores)
    {
        var (auc, variance) = AurocWithVariance(labels, scores);
        var half = Normal.InvCDF(0, 1, 0.975) * Math.Sqrt(variance);
        return new Estimate(auc, Math.Max(0, auc - half), Math.Min(1, auc + half));
    }

    /// <summary>AUROC and DeLong's variance of it, for intervals of differences between independent samples.</summary>
    public static (double Auc, double Variance) AurocWithVariance(IReadOnlyList<double> labels, IReadOnlyList<double> scores)
    {
        Check(labels, scores);
        var (positives, negatives) = Split(labels, scores);
        var (auc, v10, v01) = Placements(positives, negatives);
        return (auc, (Variance(v10) / positives.Length) + (Variance(v01) / negatives.Length));
    }

    /// <summary>
    /// scikit-learn <c>roc_curve</c> (drop_intermediate=True): false and true positive rates at each
    /// distinct score, highest first, from (0, 0), without the points that lie on a straight line
    /// between their neighbours. Rates only: the thresholds are scores, which stay with the patients.
    /// </summary>
    public static (double[] Fpr, double[] Tpr) RocCurve(IReadOnlyList<double> labels, IReadOnlyList<double> scores)
    {
        Check(labels, scores);
        var order = Enumerable.Range(0, scores.Count).OrderByDescending(i => scores[i]).ToArray();
        var tps = new List<double>();
        var fps = new List<double>();
        double tp = 0, fp = 0;
        for (var k = 0; k < order.Length; k++)
        {
            tp += labels[order[k]];
            fp += 1 - labels[order[k]];
            if (k == order.Length - 1 || scores[order[k + 1]] != scores[order[k]])
            {
                tps.Add(tp);
                fps.Add(fp);
            }
        }

        // Keep the ends and every point where the curve bends (a non-zero second difference).
        var kept = Enumerable.Range(0, tps.Count).Where(i => i == 0 || i == tps.Count - 1
            || (fps[i + 1] - (2 * fps[i]) + fps[i - 1]) != 0 || (tps[i + 1] - (2 * tps[i]) + tps[i - 1]) != 0).ToList();
        double positives = tp, negatives = fp;
        return ([0.0, .. kept.Select(i => fps[i] / negatives)], [0.0, .. kept.Select(i => tps[i] / positives)]);
    }

    /// <summary>scikit-learn <c>average_precision_score</c>: sum over thresholds of (R_n - R_{n-1}) P_n.</summary>
    public static double AveragePrecision(IReadOnlyList<double> labels, IReadOnlyList<double> scores)
    {
        Check(labels, scores);
        var order = Enumerable.Range(0, scores.Count).OrderByDescending(i => scores[i]).ToArray();
        var totalPositives = labels.Sum();
        double truePositives = 0, falsePositives = 0, previousRecall = 0, ap = 0;
        for (var k = 0; k < order.Length; k++)
        {
            if (labels[order[k]] == 1)
            {
                truePositives++;
            }
            else
            {
                falsePositives++;
            }

            // A threshold ends where the next score differs (tied scores form one threshold).
            if (k + 1 < order.Length && scores[order[k + 1]] == scores[order[k]])
            {
                continue;
            }

            var recall = truePositives / totalPositives;
            var precision = truePositives / (truePositives + falsePositives);
            ap += (recall - previousRecall) * precision;
            previousRecall = recall;
        }

        return ap;
    }

    /// <summary>scikit-learn <c>brier_score_loss</c>: the mean squared difference of score and outcome.</summary>
    public static double Brier(IReadOnlyList<double> labels, IReadOnlyList<double> scores)
    {
        Check(labels, scores);
        CheckScores(scores);
        double sum = 0;
        for (var i = 0; i < labels.Count; i++)
        {
            sum += (scores[i] - labels[i]) * (scores[i] - labels[i]);
        }

        return sum / labels.Count;
    }

    /// <summary>
    /// Calibration intercept and slope: statsmodels <c>Logit(y, [1, logit(p)]).fit()</c>, by Newton's
    /// method on the log-likelihood (to a relative change of 1e-12). A slope of 1 and an intercept
    /// of 0 mean calibrated.
    /// </summary>
    public static (double Intercept, double Slope) CalibrationFit(IReadOnlyList<double> labels, IReadOnlyList<double> scores)
    {
        var (intercept, slope) = CalibrationFitWithIntervals(labels, scores);
        return (intercept.Value, slope.Value);
    }

    /// <summary>
    /// The calibration fit with statsmodels' Wald intervals (<c>fit().conf_int()</c>): each
    /// coefficient plus or minus z(0.975) times the square root of its diagonal entry of the
    /// inverse Fisher information at the fit.
    /// </summary>
    public static (Estimate Intercept, Estimate Slope) CalibrationFitWithIntervals(IReadOnlyList<double> labels, IReadOnlyList<double> scores)
    {
        Check(labels, scores);
        CheckScores(scores);
        if (scores.Any(s => s is <= 0 or >= 1))
        {
            throw new StatisticsException("'scores' must lie strictly between 0 and 1 for the calibration fit (their logit is its covariate)");
        }

        var x = scores.Select(s => Math.Log(s / (1 - s))).ToArray();
        double b0 = 0, b1 = 0;
        for (var iteration = 0; iteration < 100; iteration++)
        {
            double g0 = 0, g1 = 0, h00 = 0, h01 = 0, h11 = 0;
            for (var i = 0; i < x.Length; i++)
            {
                var p = 1 / (1 + Math.Exp(-(b0 + (b1 * x[i]))));
                var w = p * (1 - p);
                g0 += labels[i] - p;
                g1 += (labels[i] - p) * x[i];
                h00 += w;
                h01 += w * x[i];
                h11 += w * x[i] * x[i];
            }

            var det = (h00 * h11) - (h01 * h01);
            if (!(Math.Abs(det) > 1e-300))
            {
                throw new StatisticsException("the calibration fit is singular: 'scores' carry no information about 'labels' (perfect separation or constant scores)");
            }

            var d0 = ((h11 * g0) - (h01 * g1)) / det;
            var d1 = ((h00 * g1) - (h01 * g0)) / det;
            b0 += d0;
            b1 += d1;
            if (Math.Abs(d0) + Math.Abs(d1) < 1e-13 * (1 + Math.Abs(b0) + Math.Abs(b1)))
            {
                var (v0, v1) = InverseInformationDiagonal(b0, b1, x);
                return (Wald(b0, v0), Wald(b1, v1));
            }
        }

        throw new StatisticsException("the calibration fit did not converge (perfect separation?)");
    }

    /// <summary>The diagonal of the inverse information matrix of the logistic fit at (b0, b1).</summary>
    private static (double V0, double V1) InverseInformationDiagonal(double b0, double b1, double[] x)
    {
        double h00 = 0, h01 = 0, h11 = 0;
        foreach (var xi in x)
        {
            var p = 1 / (1 + Math.Exp(-(b0 + (b1 * xi))));
            var w = p * (1 - p);
            h00 += w;
            h01 += w * xi;
            h11 += w * xi * xi;
        }

        var determinant = (h00 * h11) - (h01 * h01);
        return (h11 / determinant, h00 / determinant);
    }

    private static Estimate Wald(double value, double variance)
    {
        var half = Normal.InvCDF(0, 1, 0.975) * Math.Sqrt(variance);
        return new Estimate(value, value - half, value + half);
    }

    private static void CheckScores(IReadOnlyList<double> scores)
    {
        if (scores.Any(s => s is < 0 or > 1))
        {
            throw new StatisticsException("'scores' must be probabilities from 0 to 1");
        }
    }

    private static (double[] Positives, double[] Negatives) Split(IReadOnlyList<double> labels, IReadOnlyList<double> scores) =>
        (Enumerable.Range(0, labels.Count).Where(i => labels[i] == 1).Select(i => scores[i]).ToArray(),
         Enumerable.Range(0, labels.Count).Where(i => labels[i] == 0).Select(i => scores[i]).ToArray());

    /// <summary>
    /// DeLong's structural components: for each positive, the share of negatives it outranks (V10);
    /// for each negative, the share of positives that outrank it (V01); ties count half. From
    /// midranks (Sun and Xu 2014), O(n log n) rather than every pair.
    /// </summary>
    private static (double Auc, double[] V10, double[] V01) Placements(double[] positives, double[] negatives)
    {
        var combined = MidRanks([.. positives, .. negatives]);
        var withinPositives = MidRanks(positives);
        var withinNegatives = MidRanks(negatives);
        var v10 = new double[positives.Length];
        for (var i = 0; i < positives.Length; i++)
        {
            v10[i] = (combined[i] - withinPositives[i]) / negatives.Length;
        }

        var v01 = new double[negatives.Length];
        for (var j = 0; j < negatives.Length; j++)
        {
            v01[j] = 1 - ((combined[positives.Length + j] - withinNegatives[j]) / positives.Length);
        }

        return (v10.Average(), v10, v01);
    }

    /// <summary>1-based ranks, ties given the mean of the ranks they span.</summary>
    private static double[] MidRanks(double[] values)
    {
        var order = Enumerable.Range(0, values.Length).OrderBy(i => values[i]).ToArray();
        var ranks = new double[values.Length];
        for (var i = 0; i < order.Length;)
        {
            var j = i;
            while (j + 1 < order.Length && values[order[j + 1]] == values[order[i]])
            {
                j++;
            }

            for (var k = i; k <= j; k++)
            {
                ranks[order[k]] = (i + j + 2) / 2.0;
            }

            i = j + 1;
        }

        return ranks;
    }

    private static double Variance(double[] values)
    {
        if (values.Length < 2)
        {
            return 0;
        }

        var mean = values.Average();
        return values.Sum(v => (v - mean) * (v - mean)) / (values.Length - 1);
    }
}
