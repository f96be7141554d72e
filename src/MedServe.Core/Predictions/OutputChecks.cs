using MedServe.Repository;
using MedServe.Tensors;

namespace MedServe.Predictions;

/// <summary>
/// What a model's monitoring spec says of its outputs, in one place for live answers (experiments)
/// and logged ones (performance, alerts): which output and element is the score, and whether an
/// output holds an invalid element (NaN, infinite, or outside the declared range).
/// </summary>
public static class OutputChecks
{
    /// <summary>The index of the score's output among outputs of these names and types: the spec's, else the first FP32/FP64 one; -1 when none.</summary>
    public static int ScoreOutput(MonitoringSpec spec, int count, Func<int, string> name, Func<int, TensorDataType> type)
    {
        for (var i = 0; i < count; i++)
        {
            if (spec.ScoreOutput is { } wanted ? name(i) == wanted : type(i) is TensorDataType.Fp32 or TensorDataType.Fp64)
            {
                return type(i) is TensorDataType.Fp32 or TensorDataType.Fp64 ? i : -1;
            }
        }

        return -1;
    }

    /// <summary>The score element of one output: the spec's index, else 0, or 1 (the positive class) for a [-1, 2] output; null when the data is short.</summary>
    public static double? Score(MonitoringSpec spec, TensorDataType type, long[] shape, ReadOnlySpan<byte> data)
    {
        var size = type.ElementSize();
        var index = spec.PositiveIndex ?? (shape.Length == 2 && shape[1] == 2 ? 1 : 0);
        return size > 0 && data.Length >= (index + 1) * size ? PredictionPayload.Element(type, data.Slice(index * size, size)) : null;
    }

    /// <summary>Whether a floating-point output holds an element that is NaN, infinite, or outside the spec's range.</summary>
    public static bool Invalid(MonitoringSpec spec, TensorDataType type, ReadOnlySpan<byte> data)
    {
        if (type is not (TensorDataType.Fp16 or TensorDataType.Bf16 or TensorDataType.Fp32 or TensorDataType.Fp64))
        {
            return false;
        }

        var size = type.ElementSize();
        for (var at = 0; at + size <= data.Length; at += size)
        {
            var x = PredictionPayload.Element(type, data.Slice(at, size));
            if (!double.IsFinite(x) || x < spec.OutputMin || x > spec.OutputMax)
            {
                return true;
            }
        }

        return false;
    }
}
