using MathNet.Numerics.Distributions;

namespace MedServe.Stats.Design;

/// <summary>Intervals, multiplicity corrections and sample sizes, as statsmodels computes them.</summary>
public static class Intervals
{
    /// <summary>statsmodels <c>proportion_confint(count, nobs, alpha, method="wilson")</c>.</summary>
    public static (double Low, double High) Wilson(double successes, double trials, double alpha = 0.05)
    {
        if (!(trials > 0) || successes < 0 || successes > trials)
        {
            throw new StatisticsException($"'successes' must be from 0 to 'trials' and 'trials' above 0 (got {successes} of {trials})");
        }

        Require.Probability(alpha, "alpha");
        var z = Normal.InvCDF(0, 1, 1 - (alpha / 2));
        var p = successes / trials;
        var z2 = z * z;
        var denominator = 1 + (z2 / trials);
        var center = (p + (z2 / (2 * trials))) / denominator;
        var half = z * Math.Sqrt((p * (1 - p) / trials) + (z2 / (4 * trials * trials))) / denominator;
        return (center - half, center + half);
    }

    /// <summary>statsmodels <c>multipletests(p, method="holm")</c>: adjusted p-values in the input's order.</summary>
    public static double[] Holm(IReadOnlyList<double> p)
    {
        CheckPValues(p);
        var m = p.Count;
        var order = Enumerable.Range(0, m).OrderBy(i => p[i]).ToArray();
        var adjusted = new double[m];
        double running = 0;
        for (var k = 0; k < m; k++)
        {
            running = Math.Max(running, Math.Min(1, (m - k) * p[order[k]]));
            adjusted[order[k]] = running;
        }

        return adjusted;
    }

    /// <summary>statsmodels <c>multipletests(p, method="fdr_bh")</c>: Benjamini-Hochberg adjusted p-values in the input's order.</summary>
    public static double[] BenjaminiHochberg(IReadOnlyList<double> p)
    {
        CheckPValues(p);
        var m = p.Count;
        var order = Enumerable.Range(0, m).OrderByDescending(i => p[i]).ToArray();
        var adjusted = new double[m];
        var running = 1.0;
        for (var k = 0; k < m; k++)
        {
            var rank = m - k; // 1-based rank in ascending order
            running = Math.Min(running, p[order[k]] * m / rank);
            adjusted[order[k]] = Math.Min(1, running);
        }

        return adjusted;
    }

    /// <summary>
    /// Per-arm sample size to tell <paramref name="p1"/> from <paramref name="p2"/>: Cohen's h, then
    /// statsmodels <c>NormalIndPower().solve_power(h, alpha=alpha, power=power, ratio=1)</c>
    /// (two-sided, both tails counted), solved to 1e-10.
    /// </summary>
    public static double SampleSizeTwoProportions(double p1, double p2, double alpha, double power)
    {
        Require.Probability(p1, "p1", open: false);
        Require.Probability(p2, "p2", open: false);
        Require.Probability(alpha, "alpha");
        Require.Probability(power, "power");
        var h = Math.Abs((2 * Math.Asin(Math.Sqrt(p1))) - (2 * Math.Asin(Math.Sqrt(p2))));
        if (!(h > 0))
        {
            throw new StatisticsException("'p1' and 'p2' are equal: no sample size tells them apart");
        }

        var crit = Normal.InvCDF(0, 1, 1 - (alpha / 2));
        double Power(double n)
        {
            var shift = h * Math.Sqrt(n / 2);
            return Normal.CDF(0, 1, shift - crit) + Normal.CDF(0, 1, -shift - crit);
        }

        double low = 1e-6, high = 1;
        while (Power(high) < power)
        {
            high *= 2;
            if (high > 1e15)
            {
                throw new StatisticsException("the sample size is beyond any study: check 'p1', 'p2' and 'power'");
            }
        }

        for (var i = 0; i < 200 && high - low > 1e-12 * high; i++)
        {
            var mid = (low + high) / 2;
            if (Power(mid) < power)
            {
                low = mid;
            }
            else
            {
                high = mid;
            }
        }

        return (low + high) / 2;
    }

    private static void CheckPValues(IReadOnlyList<double> p)
    {
        Require.NonEmpty(p, "p_values");
        if (p.Any(v => v is < 0 or > 1))
        {
            throw new StatisticsException("'p_values' must each be from 0 to 1");
        }
    }
}
