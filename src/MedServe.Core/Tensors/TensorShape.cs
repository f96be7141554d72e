using System.Text;

namespace MedServe.Tensors;

/// <summary>Shape arithmetic and checks; -1 in a declared shape means "any size".</summary>
public static class TensorShape
{
    /// <summary>Number of elements, or -1 when a dimension is negative or the product overflows.</summary>
    public static long ElementCount(ReadOnlySpan<long> shape)
    {
        long count = 1;
        foreach (var dim in shape)
        {
            if (dim < 0)
            {
                return -1;
            }

            try
            {
                count = checked(count * dim);
            }
            catch (OverflowException)
            {
                return -1;
            }
        }

        return count;
    }

    /// <summary>True when a concrete shape fits a declared one (same rank, equal dims where declared is not -1).</summary>
    public static bool Matches(ReadOnlySpan<long> declared, ReadOnlySpan<long> actual)
    {
        if (declared.Length != actual.Length)
        {
            return false;
        }

        for (var i = 0; i < declared.Length; i++)
        {
            if (declared[i] >= 0 && declared[i] != actual[i])
            {
                return false;
            }
        }

        return true;
    }

    public static string Format(ReadOnlySpan<long> shape)
    {
        var builder = new StringBuilder("[");
        for (var i = 0; i < shape.Length; i++)
        {
            if (i > 0)
            {
                builder.Append(',');
            }

            builder.Append(shape[i]);
        }

        return builder.Append(']').ToString();
    }
}
