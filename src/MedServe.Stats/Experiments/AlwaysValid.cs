namespace MedServe.Stats.Experiments;

/// <summary>
/// Always-valid inference for a difference of means (Johari, Koomen, Pekelis and Walsh 2017, the
/// basis of Optimizely's Stats Engine): the mixture sequential probability ratio test with a
/// normal mixture N(0, tau²) over the effect. With V the variance of the estimated difference,
/// <code>
/// Lambda = sqrt(V / (V + tau²)) * exp(tau² (diff - theta0)² / (2 V (V + tau²)))
/// </code>
/// and the always-valid p-value is the running minimum of 1 / Lambda. Looking after every
/// observation keeps the type-I error at alpha, which a fixed-horizon test looked at repeatedly
/// does not. The always-valid interval is the set of theta0 the test does not reject at alpha,
/// intersected over the looks.
/// </summary>
public sealed class AlwaysValid(double tau, double alpha = 0.05)
{
    private double _p = 1;
    private double _low = double.NegativeInfinity;
    private double _high = double.PositiveInfinity;

    public double Tau { get; } = tau > 0 && double.IsFinite(tau) ? tau : throw new StatisticsException("'tau' (the mixture's standard deviation) must be above 0");

    public double Alpha { get; } = alpha is > 0 and < 1 ? alpha : throw new StatisticsException("'alpha' must be between 0 and 1");

    /// <summary>The always-valid p-value after the looks so far (1 before any).</summary>
    public double P => _p;

    public (double Low, double High) Interval => (_low, _high);

    /// <summary>One look: the estimated difference and its variance now. Returns the always-valid p-value.</summary>
    public double Look(double difference, double variance, double theta0 = 0)
    {
        if (!(variance > 0) || !double.IsFinite(difference))
        {
            return _p;
        }

        var tau2 = Tau * Tau;
        var logLambda = (0.5 * Math.Log(variance / (variance + tau2))) + (tau2 * (difference - theta0) * (difference - theta0) / (2 * variance * (variance + tau2)));
        _p = Math.Min(_p, Math.Min(1, Math.Exp(-logLambda)));
        var half = Math.Sqrt(2 * variance * (variance + tau2) / tau2 * (Math.Log(1 / Alpha) + (0.5 * Math.Log((variance + tau2) / variance))));
        _low = Math.Max(_low, difference - half);
        _high = Math.Min(_high, difference + half);
        return _p;
    }

    /// <summary>The p-value and interval of one look alone, from the start: for a report computed once.</summary>
    public static (double P, double Low, double High) Once(double difference, double variance, double tau, double alpha = 0.05)
    {
        var test = new AlwaysValid(tau, alpha);
        test.Look(difference, variance);
        return (test.P, test.Interval.Low, test.Interval.High);
    }
}
