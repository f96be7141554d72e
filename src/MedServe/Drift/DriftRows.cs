using MedServe.Predictions;
using MedServe.Repository;
using MedServe.Tensors;

namespace MedServe.Drift;

/// <summary>
/// A logged prediction as drift rows: one row per batch element, its features every element of
/// every input tensor (in order) then every element of every output. Names come from the
/// monitoring spec's feature_names for the inputs where it gives as many, else "input[i]"; outputs
/// are "output[i]". A prediction whose inputs were summarised (over the size cap) has no rows.
/// </summary>
public static class DriftRows
{
    public static (IReadOnlyList<string> Names, List<double[]> Rows)? From(DecodedPrediction prediction, MonitoringSpec spec)
    {
        if (prediction.InputsSummarised)
        {
            return null;
        }

        var tensors = prediction.Inputs.Concat(prediction.Outputs).Where(t => t.DataType != TensorDataType.Bytes && t.Data is not null).ToList();
        if (tensors.Count == 0)
        {
            return null;
        }

        var batch = tensors[0].Shape.Length >= 2 ? tensors[0].Shape[0] : 1;
        if (batch < 1 || tensors.Any(t => (t.Shape.Length >= 2 ? t.Shape[0] : 1) != batch))
        {
            return null;
        }

        var names = new List<string>();
        var inputWidth = prediction.Inputs.Where(tensors.Contains).Sum(t => Width(t, batch));
        var useSpec = spec.FeatureNames.Count == inputWidth;
        foreach (var tensor in tensors)
        {
            var width = Width(tensor, batch);
            var isInput = prediction.Inputs.Contains(tensor);
            for (var i = 0; i < width; i++)
            {
                names.Add(isInput && useSpec ? spec.FeatureNames[names.Count] : $"{tensor.Name}[{i}]");
            }
        }

        var rows = new List<double[]>((int)batch);
        for (var b = 0; b < batch; b++)
        {
            var row = new double[names.Count];
            var at = 0;
            foreach (var tensor in tensors)
            {
                var width = Width(tensor, batch);
                var size = tensor.DataType.ElementSize();
                for (var i = 0; i < width; i++)
                {
                    var offset = (int)(((b * width) + i) * size);
                    row[at++] = offset + size <= tensor.Data!.Length ? PredictionPayload.Element(tensor.DataType, tensor.Data.AsSpan(offset, size)) : double.NaN;
                }
            }

            rows.Add(row);
        }

        return (names, rows);
    }

    private static long Width(LoggedTensor tensor, long batch)
    {
        var elements = tensor.Shape.Aggregate(1L, (a, d) => a * Math.Max(d, 0));
        return elements / batch;
    }
}
