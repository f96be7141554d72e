namespace MedServe.Stats.Distances;

/// <summary>How far one distribution is from another (drift), each as scipy computes it.</summary>
public static class DistributionDistances
{
    /// <summary>scipy <c>wasserstein_distance(u, v)</c>: the area between the two empirical CDFs.</summary>
    public static double Wasserstein(IReadOnlyList<double> reference, IReadOnlyList<double> current)
    {
        Require.NonEmpty(reference, "reference");
        Require.NonEmpty(current, "current");
        var u = reference.Order().ToArray();
        var v = current.Order().ToArray();
        var all = u.Concat(v).Order().ToArray();
        double distance = 0;
        int iu = 0, iv = 0;
        for (var i = 0; i < all.Length - 1; i++)
        {
            // CDFs just right of all[i]: the share of each sample at or below it.
            while (iu < u.Length && u[iu] <= all[i])
            {
                iu++;
            }

            while (iv < v.Length && v[iv] <= all[i])
            {
                iv++;
            }

            distance += Math.Abs(((double)iu / u.Length) - ((double)iv / v.Length)) * (all[i + 1] - all[i]);
        }

        return distance;
    }

    /// <summary>scipy <c>spatial.distance.jensenshannon(p, q, base=2)</c>: both normalized to sum 1 first.</summary>
    public static double JensenShannon(IReadOnlyList<double> p, IReadOnlyList<double> q)
    {
        Require.NonEmpty(p, "p");
        Require.NonEmpty(q, "q");
        Require.SameLength(p.Count, "p", q.Count, "q");
        var ps = Normalized(p, "p");
        var qs = Normalized(q, "q");
        double divergence = 0;
        for (var i = 0; i < ps.Length; i++)
        {
            var m = (ps[i] + qs[i]) / 2;
            divergence += RelativeEntropy(ps[i], m) + RelativeEntropy(qs[i], m);
        }

        return Math.Sqrt(Math.Max(0, divergence / 2 / Math.Log(2)));
    }

    /// <summary>Population stability index over bin proportions, each floored at <paramref name="epsilon"/> so an empty bin stays finite.</summary>
    public static double Psi(IReadOnlyList<double> expected, IReadOnlyList<double> actual, double epsilon)
    {
        Require.NonEmpty(expected, "expected");
        Require.NonEmpty(actual, "actual");
        Require.SameLength(expected.Count, "expected", actual.Count, "actual");
        if (!(epsilon > 0) || epsilon >= 1)
        {
            throw new StatisticsException($"'epsilon' must be above 0 and below 1, not {epsilon}");
        }

        CheckProportions(expected, "expected");
        CheckProportions(actual, "actual");
        double psi = 0;
        for (var i = 0; i < expected.Count; i++)
        {
            var e = Math.Max(expected[i], epsilon);
            var a = Math.Max(actual[i], epsilon);
            psi += (a - e) * Math.Log(a / e);
        }

        return psi;
    }

    private static void CheckProportions(IReadOnlyList<double> values, string field)
    {
        if (values.Any(v => v < 0) || Math.Abs(values.Sum() - 1) > 1e-6)
        {
            throw new StatisticsException($"'{field}' must be bin proportions: none negative, summing to 1 (they sum to {values.Sum()})");
        }
    }

    private static double[] Normalized(IReadOnlyList<double> values, string field)
    {
        if (values.Any(v => v < 0))
        {
            throw new StatisticsException($"'{field}' is a probability vector: no entry may be negative");
        }

        var sum = values.Sum();
        if (Math.Abs(sum - 1) > 1e-6)
        {
            throw new StatisticsException($"'{field}' is a probability vector: it must sum to 1, not {sum}");
        }

        return values.Select(v => v / sum).ToArray();
    }

    /// <summary>scipy's <c>rel_entr</c>: x ln(x/y), 0 at x = 0.</summary>
    private static double RelativeEntropy(double x, double y) => x == 0 ? 0 : x * Math.Log(x / y);
}
