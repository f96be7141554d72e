namespace MedServe.Stats.Drift;

/// <summary>How a feature's values are compared: by their distribution, their categories, or their share of ones.</summary>
public enum FeatureKind
{
    Numeric,
    Categorical,
    Binary,
}

/// <summary>
/// What drift detection keeps of one feature of the reference: its kind, count, mean and standard
/// deviation; its values sorted (all of them up to <see cref="FeatureReference.ExactLimit"/>, where
/// the KS test needs every value; above it, that many quantiles, which is all the Wasserstein
/// distance needs); PSI's bin edges (the reference's deciles) and proportions; and each category's
/// count for categorical and binary features.
/// </summary>
public sealed record FeatureReference(string Name, int Index, FeatureKind Kind, int Count, double Mean, double StdDev,
    double[] Values, bool Complete, double[] BinEdges, double[] BinProportions, IReadOnlyDictionary<double, int> Categories)
{
    /// <summary>Evidently's switch: up to this many reference rows get statistical tests; more, distances.</summary>
    public const int ExactLimit = 1000;

    /// <summary>At most this many distinct integer values make a feature categorical.</summary>
    public const int MaxCategories = 10;

    public static FeatureReference Summarise(string name, int index, IReadOnlyList<double> values, FeatureKind? kind = null)
    {
        Require.NonEmpty(values, name, 2);
        Require.Finite(values, name);
        var sorted = values.Order().ToArray();
        var mean = sorted.Average();
        var sd = Math.Sqrt(sorted.Sum(v => (v - mean) * (v - mean)) / (sorted.Length - 1));
        var distinct = sorted.Distinct().ToArray();
        var inferred = kind ?? (distinct.All(v => v is 0 or 1) ? FeatureKind.Binary
            : distinct.Length <= MaxCategories && distinct.All(v => v == Math.Floor(v)) ? FeatureKind.Categorical
            : FeatureKind.Numeric);
        var categories = inferred == FeatureKind.Numeric
            ? new Dictionary<double, int>()
            : sorted.GroupBy(v => v).ToDictionary(g => g.Key, g => g.Count());
        var complete = sorted.Length <= ExactLimit;
        var kept = complete ? sorted : Enumerable.Range(0, ExactLimit).Select(i => Quantile(sorted, (i + 0.5) / ExactLimit)).ToArray();
        var edges = Enumerable.Range(1, 9).Select(i => Quantile(sorted, i / 10.0)).Distinct().ToArray();
        return new FeatureReference(name, index, inferred, sorted.Length, mean, sd, kept, complete, edges, Proportions(edges, sorted), categories);
    }

    /// <summary>The share of values in each bin: (-inf, e0], (e0, e1], ..., (e_last, inf).</summary>
    public static double[] Proportions(double[] edges, IReadOnlyList<double> values)
    {
        var counts = new double[edges.Length + 1];
        foreach (var v in values)
        {
            var bin = Array.BinarySearch(edges, v);
            counts[bin >= 0 ? bin : ~bin]++;
        }

        return [.. counts.Select(c => c / values.Count)];
    }

    /// <summary>Linear interpolation between order statistics (numpy's default quantile).</summary>
    public static double Quantile(double[] sorted, double q)
    {
        var position = q * (sorted.Length - 1);
        var low = (int)Math.Floor(position);
        var high = Math.Min(low + 1, sorted.Length - 1);
        return sorted[low] + ((position - low) * (sorted[high] - sorted[low]));
    }
}
