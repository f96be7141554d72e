using MathNet.Numerics.Distributions;

namespace MedServe.Stats.Tests;

/// <summary>Two-sided hypothesis tests, each computed as the named scipy / statsmodels function computes it.</summary>
public static class HypothesisTests
{
    /// <summary>statsmodels <c>proportions_ztest(count, nobs)</c>: pooled variance, two-sided.</summary>
    public static (double Z, double P) TwoProportionZTest(IReadOnlyList<double> successes, IReadOnlyList<double> trials)
    {
        if (successes.Count != 2 || trials.Count != 2)
        {
            throw new StatisticsException("'successes' and 'trials' must each hold two counts, one per group");
        }

        for (var i = 0; i < 2; i++)
        {
            if (!(trials[i] > 0) || successes[i] < 0 || successes[i] > trials[i] || !double.IsFinite(successes[i]) || !double.IsFinite(trials[i]))
            {
                throw new StatisticsException($"group {i}: 'successes' must be from 0 to 'trials', and 'trials' above 0 (got {successes[i]} of {trials[i]})");
            }
        }

        var p1 = successes[0] / trials[0];
        var p2 = successes[1] / trials[1];
        var pooled = (successes[0] + successes[1]) / (trials[0] + trials[1]);
        var variance = pooled * (1 - pooled) * ((1 / trials[0]) + (1 / trials[1]));
        if (!(variance > 0))
        {
            throw new StatisticsException("'successes' are all 0 or all the trials: the pooled proportion has no variance");
        }

        var z = (p1 - p2) / Math.Sqrt(variance);
        return (z, 2 * Normal.CDF(0, 1, -Math.Abs(z)));
    }

    /// <summary>scipy <c>ttest_ind(a, b, equal_var=False)</c>: Welch's t with Welch-Satterthwaite degrees of freedom.</summary>
    public static (double T, double P, double Df) WelchTTest(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        Require.NonEmpty(a, "a", 2);
        Require.NonEmpty(b, "b", 2);
        var (meanA, varA) = MeanVariance(a);
        var (meanB, varB) = MeanVariance(b);
        var sa = varA / a.Count;
        var sb = varB / b.Count;
        if (!(sa + sb > 0))
        {
            throw new StatisticsException("'a' and 'b' are both constant: the t statistic is undefined");
        }

        var t = (meanA - meanB) / Math.Sqrt(sa + sb);
        var df = (sa + sb) * (sa + sb) / ((sa * sa / (a.Count - 1)) + (sb * sb / (b.Count - 1)));
        return (t, 2 * StudentT.CDF(0, 1, df, -Math.Abs(t)), df);
    }

    /// <summary>
    /// scipy <c>mannwhitneyu(a, b, use_continuity=True, alternative="two-sided", method="asymptotic")</c>:
    /// U of <paramref name="a"/>, the normal approximation with the tie correction and continuity.
    /// </summary>
    public static (double U, double P) MannWhitneyU(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        Require.NonEmpty(a, "a");
        Require.NonEmpty(b, "b");
        var n1 = (double)a.Count;
        var n2 = (double)b.Count;
        var all = a.Select(v => (Value: v, First: true)).Concat(b.Select(v => (Value: v, First: false))).OrderBy(x => x.Value).ToList();
        double rankSumA = 0;
        double tieTerm = 0;
        for (var i = 0; i < all.Count;)
        {
            var j = i;
            while (j + 1 < all.Count && all[j + 1].Value == all[i].Value)
            {
                j++;
            }

            var rank = (i + j + 2) / 2.0; // ranks i+1 .. j+1, averaged
            var ties = j - i + 1;
            tieTerm += ((double)ties * ties * ties) - ties;
            for (var k = i; k <= j; k++)
            {
                if (all[k].First)
                {
                    rankSumA += rank;
                }
            }

            i = j + 1;
        }

        var u1 = rankSumA - (n1 * (n1 + 1) / 2);
        var u2 = (n1 * n2) - u1;
        var n = n1 + n2;
        var mu = n1 * n2 / 2;
        var sigma = Math.Sqrt(n1 * n2 / 12 * ((n + 1) - (tieTerm / (n * (n - 1)))));
        if (!(sigma > 0))
        {
            throw new StatisticsException("every value of 'a' and 'b' is the same: the U statistic has no variance");
        }

        var z = (Math.Max(u1, u2) - mu - 0.5) / sigma;
        return (u1, Math.Min(1, 2 * Normal.CDF(0, 1, -z)));
    }

    /// <summary>scipy <c>chi2_contingency(table, correction=False)</c>.</summary>
    public static (double Chi2, double P, int Dof) Chi2Independence(IReadOnlyList<IReadOnlyList<double>> table)
    {
        if (table.Count < 2 || table[0].Count < 2)
        {
            throw new StatisticsException("'table' must have at least 2 rows and 2 columns");
        }

        var columns = table[0].Count;
        for (var r = 0; r < table.Count; r++)
        {
            if (table[r].Count != columns)
            {
                throw new StatisticsException($"'table' row {r} has {table[r].Count} cells, row 0 has {columns}");
            }

            if (table[r].Any(c => c < 0 || !double.IsFinite(c)))
            {
                throw new StatisticsException($"'table' row {r} holds a count that is negative or not a number");
            }
        }

        var rows = table.Select(r => r.Sum()).ToArray();
        var cols = Enumerable.Range(0, columns).Select(c => table.Sum(r => r[c])).ToArray();
        var total = rows.Sum();
        if (rows.Any(s => s == 0) || cols.Any(s => s == 0))
        {
            throw new StatisticsException("'table' has a row or column of zeros: its expected counts are zero");
        }

        double chi2 = 0;
        for (var r = 0; r < table.Count; r++)
        {
            for (var c = 0; c < columns; c++)
            {
                var expected = rows[r] * cols[c] / total;
                chi2 += (table[r][c] - expected) * (table[r][c] - expected) / expected;
            }
        }

        var dof = (table.Count - 1) * (columns - 1);
        return (chi2, SurvivalChi2(dof, chi2), dof);
    }

    /// <summary>
    /// Sample-ratio mismatch: scipy <c>chisquare(counts, f_exp)</c> with the expected counts the
    /// weights' shares of the total.
    /// </summary>
    public static (double Chi2, double P) SampleRatioMismatch(IReadOnlyList<double> counts, IReadOnlyList<double> weights)
    {
        Require.NonEmpty(counts, "counts", 2);
        Require.NonEmpty(weights, "weights", 2);
        Require.SameLength(counts.Count, "counts", weights.Count, "weights");
        if (counts.Any(c => c < 0) || weights.Any(w => !(w > 0)))
        {
            throw new StatisticsException("'counts' must not be negative and every 'weights' entry must be above 0");
        }

        var total = counts.Sum();
        var weightSum = weights.Sum();
        if (!(total > 0))
        {
            throw new StatisticsException("'counts' are all zero");
        }

        double chi2 = 0;
        for (var i = 0; i < counts.Count; i++)
        {
            var expected = total * weights[i] / weightSum;
            chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
        }

        return (chi2, SurvivalChi2(counts.Count - 1, chi2));
    }

    /// <summary>The chi-square upper tail, from the regularized upper incomplete gamma (accurate far into the tail, unlike 1 - CDF).</summary>
    internal static double SurvivalChi2(int dof, double x) =>
        x <= 0 ? 1 : MathNet.Numerics.SpecialFunctions.GammaUpperRegularized(dof / 2.0, x / 2);

    internal static (double Mean, double Variance) MeanVariance(IReadOnlyList<double> values)
    {
        var mean = values.Average();
        double sum = 0;
        foreach (var v in values)
        {
            sum += (v - mean) * (v - mean);
        }

        return (mean, sum / (values.Count - 1));
    }
}
