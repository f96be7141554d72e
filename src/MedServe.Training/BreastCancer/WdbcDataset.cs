using System.Globalization;

namespace MedServe.Training.BreastCancer;

/// <summary>
/// The Wisconsin Diagnostic Breast Cancer data (data/wdbc.csv): 30 features per biopsy in the
/// CSV's column order, and the label <c>malignant</c> (1 malignant, 0 benign).
/// </summary>
public sealed class WdbcDataset
{
    public const int FeatureCount = 30;

    private WdbcDataset(string[] featureNames, float[][] features, bool[] labels)
    {
        FeatureNames = featureNames;
        Features = features;
        Labels = labels;
    }

    public IReadOnlyList<string> FeatureNames { get; }

    public float[][] Features { get; }

    public bool[] Labels { get; }

    public static WdbcDataset Load(string path)
    {
        using var reader = new StreamReader(path);
        var header = reader.ReadLine()?.Split(',') ?? throw new InvalidDataException($"{path} is empty");
        if (header.Length != FeatureCount + 1 || header[^1] != "malignant")
        {
            throw new InvalidDataException($"{path}: expected {FeatureCount} feature columns and 'malignant' last");
        }

        var features = new List<float[]>();
        var labels = new List<bool>();
        var line = 1;
        while (reader.ReadLine() is { } text)
        {
            line++;
            if (text.Length == 0)
            {
                continue;
            }

            var cells = text.Split(',');
            if (cells.Length != FeatureCount + 1)
            {
                throw new InvalidDataException($"{path} line {line}: expected {FeatureCount + 1} columns, found {cells.Length}");
            }

            var row = new float[FeatureCount];
            for (var i = 0; i < FeatureCount; i++)
            {
                if (!float.TryParse(cells[i], NumberStyles.Float, CultureInfo.InvariantCulture, out row[i]))
                {
                    throw new InvalidDataException($"{path} line {line}, column '{header[i]}': not a number");
                }
            }

            features.Add(row);
            labels.Add(cells[^1].Trim() switch
            {
                "1" => true,
                "0" => false,
                _ => throw new InvalidDataException($"{path} line {line}: 'malignant' must be 0 or 1"),
            });
        }

        return new WdbcDataset(header[..^1], [.. features], [.. labels]);
    }

    /// <summary>A fixed, seeded, stratified split: the same rows go to the test set every time.</summary>
    public (int[] Train, int[] Test) Split(double testFraction, int seed)
    {
        var random = new Random(seed);
        var train = new List<int>();
        var test = new List<int>();
        foreach (var label in new[] { true, false })
        {
            var rows = Enumerable.Range(0, Labels.Length).Where(i => Labels[i] == label).ToArray();
            random.Shuffle(rows);
            var testCount = (int)Math.Round(rows.Length * testFraction);
            test.AddRange(rows[..testCount]);
            train.AddRange(rows[testCount..]);
        }

        train.Sort();
        test.Sort();
        return (train.ToArray(), test.ToArray());
    }
}
