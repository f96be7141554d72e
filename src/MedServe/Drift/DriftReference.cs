using System.Text.Json;
using MedServe.Stats;
using MedServe.Stats.Drift;

namespace MedServe.Drift;

/// <summary>
/// A stored reference: each feature's summary (<see cref="FeatureReference"/>) and a seeded sample
/// of at most <see cref="JointRows"/> whole rows, which the multivariate test needs (no per-feature
/// summary keeps the correlation between features). Raw values are kept only where a test needs
/// them: all of a feature's values up to 1000 (KS), quantiles above.
/// </summary>
public sealed record DriftReference(IReadOnlyList<FeatureReference> Features, IReadOnlyList<double[]> Rows, int RowCount)
{
    public const int JointRows = 500;

    public static DriftReference Build(IReadOnlyList<string> names, IReadOnlyList<double[]> rows, int seed = 29)
    {
        if (rows.Count < 2)
        {
            throw new StatisticsException($"a reference needs at least 2 rows; these give {rows.Count}");
        }

        var features = new List<FeatureReference>(names.Count);
        for (var f = 0; f < names.Count; f++)
        {
            var column = rows.Select(r => r[f]).Where(double.IsFinite).ToArray();
            if (column.Length < 2)
            {
                throw new StatisticsException($"feature '{names[f]}' has fewer than 2 finite values in the reference");
            }

            features.Add(FeatureReference.Summarise(names[f], f, column));
        }

        var complete = rows.Where(r => r.All(double.IsFinite)).ToArray();
        var random = new Random(seed);
        var joint = complete.Length <= JointRows ? complete : [.. complete.OrderBy(_ => random.Next()).Take(JointRows)];
        return new DriftReference(features, joint, rows.Count);
    }

    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("row_count", RowCount);
            w.WriteStartArray("features");
            foreach (var f in Features)
            {
                w.WriteStartObject();
                w.WriteString("name", f.Name);
                w.WriteNumber("index", f.Index);
                w.WriteString("kind", f.Kind.ToString().ToLowerInvariant());
                w.WriteNumber("count", f.Count);
                w.WriteNumber("mean", f.Mean);
                w.WriteNumber("std", f.StdDev);
                w.WriteBoolean("complete", f.Complete);
                Numbers(w, "values", f.Values);
                Numbers(w, "bin_edges", f.BinEdges);
                Numbers(w, "bin_proportions", f.BinProportions);
                w.WriteStartArray("categories");
                foreach (var (value, count) in f.Categories.OrderBy(c => c.Key))
                {
                    w.WriteStartArray();
                    w.WriteNumberValue(value);
                    w.WriteNumberValue(count);
                    w.WriteEndArray();
                }

                w.WriteEndArray();
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteStartArray("rows");
            foreach (var row in Rows)
            {
                w.WriteStartArray();
                foreach (var v in row)
                {
                    w.WriteNumberValue(v);
                }

                w.WriteEndArray();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }

    public static DriftReference FromJson(string json)
    {
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        var features = root.GetProperty("features").EnumerateArray().Select(f => new FeatureReference(
            f.GetProperty("name").GetString()!, f.GetProperty("index").GetInt32(), Enum.Parse<FeatureKind>(f.GetProperty("kind").GetString()!, ignoreCase: true),
            f.GetProperty("count").GetInt32(), f.GetProperty("mean").GetDouble(), f.GetProperty("std").GetDouble(),
            Doubles(f.GetProperty("values")), f.GetProperty("complete").GetBoolean(), Doubles(f.GetProperty("bin_edges")), Doubles(f.GetProperty("bin_proportions")),
            f.GetProperty("categories").EnumerateArray().ToDictionary(c => c[0].GetDouble(), c => c[1].GetInt32()))).ToList();
        var rows = root.GetProperty("rows").EnumerateArray().Select(Doubles).ToList();
        return new DriftReference(features, rows, root.GetProperty("row_count").GetInt32());
    }

    private static double[] Doubles(JsonElement array) => [.. array.EnumerateArray().Select(v => v.GetDouble())];

    private static void Numbers(Utf8JsonWriter w, string name, double[] values)
    {
        w.WriteStartArray(name);
        foreach (var v in values)
        {
            w.WriteNumberValue(v);
        }

        w.WriteEndArray();
    }
}
