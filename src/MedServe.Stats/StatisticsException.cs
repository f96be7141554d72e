namespace MedServe.Stats;

/// <summary>Inputs a statistic cannot be computed from; the message names the field and what is wrong with it.</summary>
public sealed class StatisticsException(string message) : Exception(message);

/// <summary>Checks every statistic shares, each naming the field.</summary>
internal static class Require
{
    public static void NonEmpty(IReadOnlyCollection<double> values, string field, int minimum = 1)
    {
        if (values.Count < minimum)
        {
            throw new StatisticsException($"'{field}' needs at least {minimum} value{(minimum == 1 ? "" : "s")}, has {values.Count}");
        }

        Finite(values, field);
    }

    public static void Finite(IEnumerable<double> values, string field)
    {
        var i = 0;
        foreach (var value in values)
        {
            if (!double.IsFinite(value))
            {
                throw new StatisticsException($"'{field}'[{i}] is not a finite number");
            }

            i++;
        }
    }

    public static void SameLength(int a, string fieldA, int b, string fieldB)
    {
        if (a != b)
        {
            throw new StatisticsException($"'{fieldA}' has {a} values and '{fieldB}' {b}: they must be as long");
        }
    }

    public static void Probability(double value, string field, bool open = true)
    {
        if (!double.IsFinite(value) || (open ? value is <= 0 or >= 1 : value is < 0 or > 1))
        {
            throw new StatisticsException($"'{field}' must be a probability {(open ? "strictly between 0 and 1" : "from 0 to 1")}, not {value}");
        }
    }
}
