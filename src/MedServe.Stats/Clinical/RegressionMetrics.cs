using MathNet.Numerics.Distributions;

namespace MedServe.Stats.Clinical;

/// <summary>
/// A regression model's performance against measured values: mean absolute error and mean error
/// (bias, prediction minus outcome) with Student t 95% intervals (scipy <c>stats.t.interval</c> on
/// the per-case errors), root mean squared error, and R² (scikit-learn <c>r2_score</c>).
/// </summary>
public static class RegressionMetrics
{
    public sealed record Report(int N, Estimate MeanAbsoluteError, Estimate MeanError, double RootMeanSquaredError, double RSquared);

    public static Report Compute(IReadOnlyList<double> values, IReadOnlyList<double> predictions)
    {
        Require.SameLength(values.Count, "values", predictions.Count, "predictions");
        Require.NonEmpty(values, "values", 3);
        if (values.Concat(predictions).Any(v => !double.IsFinite(v)))
        {
            throw new StatisticsException("'values' and 'predictions' must be finite numbers");
        }

        var errors = values.Select((v, i) => predictions[i] - v).ToArray();
        var mean = values.Average();
        var residual = errors.Sum(e => e * e);
        var total = values.Sum(v => (v - mean) * (v - mean));
        if (!(total > 0))
        {
            throw new StatisticsException("'values' are all equal: R² needs outcomes that vary");
        }

        return new Report(values.Count, MeanWithInterval([.. errors.Select(Math.Abs)]), MeanWithInterval(errors),
            Math.Sqrt(residual / values.Count), 1 - (residual / total));
    }

    /// <summary>
    /// Student's t quantile to full precision: MathNet's InvCDF (good to about 1e-9) polished by
    /// Newton steps on its CDF, which it computes through the incomplete beta function exactly.
    /// </summary>
    public static double StudentQuantile(double df, double p)
    {
        var t = StudentT.InvCDF(0, 1, df, p);
        for (var i = 0; i < 4; i++)
        {
            var step = (StudentT.CDF(0, 1, df, t) - p) / StudentT.PDF(0, 1, df, t);
            t -= step;
            if (Math.Abs(step) <= 1e-16 * Math.Abs(t))
            {
                break;
            }
        }

        return t;
    }

    private static Estimate MeanWithInterval(double[] x)
    {
        var mean = x.Average();
        var sd = Math.Sqrt(x.Sum(v => (v - mean) * (v - mean)) / (x.Length - 1));
        var half = StudentQuantile(x.Length - 1, 0.975) * sd / Math.Sqrt(x.Length);
        return new Estimate(mean, mean - half, mean + half);
    }
}
