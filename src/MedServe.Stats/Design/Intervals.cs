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

    /// <summary>
    /// The difference of two independent proportions, p1 - p2, with Newcombe's hybrid score
    /// interval from the two Wilson intervals: statsmodels
    /// <c>confint_proportions_2indep(c1, n1, c2, n2, method="newcomb", compare="diff")</c>.
    /// </summary>
    public static (double Difference, double Low, double High) NewcombeDifference(double successes1, double trials1, double successes2, double trials2, double alpha = 0.05)
    {
        var (l1, u1) = Wilson(successes1, trials1, alpha);
        var (l2, u2) = Wilson(successes2, trials2, alpha);
        double p1 = successes1 / trials1, p2 = successes2 / trials2, difference = p1 - p2;
        return (difference,
            difference - Math.Sqrt(((p1 - l1) * (p1 - l1)) + ((u2 - p2) * (u2 - p2))),
            difference + Math.Sqrt(((u1 - p1) * (u1 - p1)) + ((p2 - l2) * (p2 - l2))));
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

    /// <summary>
    /// Per-arm sample size for a two-sided two-sample t-test of effect <paramref name="cohensD"/>:
    /// statsmodels <c>TTestIndPower().solve_power(d, alpha=alpha, power=power, ratio=1)</c>, whose
    /// power is the noncentral t's mass beyond both critical values (df = 2n - 2, noncentrality
    /// d * sqrt(n / 2)), solved to 1e-10.
    /// </summary>
    public static double SampleSizeTTest(double cohensD, double alpha, double power)
    {
        Require.Probability(alpha, "alpha");
        Require.Probability(power, "power");
        var d = Math.Abs(cohensD);
        if (!(d > 0) || !double.IsFinite(d))
        {
            throw new StatisticsException("'cohens_d' must be a finite number other than 0");
        }

        // The power climbs with n from 2 (df 2) on; below that the t has no degrees of freedom.
        return Solve(n => PowerTTest(d, n, alpha), power, 2, "cohens_d");
    }

    /// <summary>The power of a two-sided two-sample t-test of effect d with n per arm: the noncentral t's mass beyond both critical values.</summary>
    public static double PowerTTest(double cohensD, double n, double alpha = 0.05)
    {
        if (!(n >= 2))
        {
            return 0;
        }

        var d = Math.Abs(cohensD);
        var df = (2 * n) - 2;
        var nc = d * Math.Sqrt(n / 2);
        var upper = StudentT.InvCDF(0, 1, df, 1 - (alpha / 2));
        return (1 - NoncentralT.Cdf(upper, df, nc)) + NoncentralT.Cdf(-upper, df, nc);
    }

    /// <summary>The power of the two-sided test of two proportions with n per arm (Cohen's h, NormalIndPower).</summary>
    public static double PowerTwoProportions(double p1, double p2, double n, double alpha = 0.05)
    {
        var h = Math.Abs((2 * Math.Asin(Math.Sqrt(p1))) - (2 * Math.Asin(Math.Sqrt(p2))));
        var crit = Normal.InvCDF(0, 1, 1 - (alpha / 2));
        var shift = h * Math.Sqrt(n / 2);
        return Normal.CDF(0, 1, shift - crit) + Normal.CDF(0, 1, -shift - crit);
    }

    /// <summary>The n at which an increasing power reaches <paramref name="target"/>, by bisection to 1e-12 relative.</summary>
    private static double Solve(Func<double, double> power, double target, double low, string field)
    {
        var high = Math.Max(low * 2, 4);
        while (power(high) < target)
        {
            high *= 2;
            if (high > 1e12)
            {
                throw new StatisticsException($"the sample size is beyond any study: check '{field}' and 'power'");
            }
        }

        if (power(low) >= target)
        {
            return low;
        }

        for (var i = 0; i < 200 && high - low > 1e-12 * high; i++)
        {
            var mid = (low + high) / 2;
            if (power(mid) < target)
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
