using MathNet.Numerics;

namespace MedServe.Stats.Design;

/// <summary>
/// The noncentral t distribution's CDF, which MathNet lacks: Lenth's series (Applied Statistics
/// algorithm AS 243, 1989), a Poisson mixture of regularized incomplete beta functions, summed
/// outward from its largest term until the remaining mass is below 1e-16.
/// </summary>
internal static class NoncentralT
{
    public static double Cdf(double t, double df, double delta)
    {
        if (t < 0)
        {
            return 1 - Cdf(-t, df, -delta);
        }

        var lower = MathNet.Numerics.Distributions.Normal.CDF(0, 1, -delta);
        if (t == 0)
        {
            return lower;
        }

        var x = t * t / ((t * t) + df);
        var lambda = delta * delta / 2;
        var half = df / 2;

        // P(T <= t) = Phi(-delta) + 1/2 sum_j [ p_j I_x(j + 1/2, df/2) + q_j I_x(j + 1, df/2) ], p_j Poisson(lambda) weights,
        // q_j = delta / sqrt(2) * exp(-lambda) lambda^j / Gamma(j + 3/2). Summed from the Poisson mode both ways.
        var mode = (int)Math.Floor(lambda);
        double Term(int j)
        {
            var logPoisson = -lambda + (j * Math.Log(Math.Max(lambda, double.Epsilon))) - SpecialFunctions.GammaLn(j + 1);
            var p = lambda == 0 ? (j == 0 ? 1 : 0) : Math.Exp(logPoisson);
            var logQ = -lambda + (j * Math.Log(Math.Max(lambda, double.Epsilon))) - SpecialFunctions.GammaLn(j + 1.5);
            var q = lambda == 0 ? (j == 0 ? Math.Exp(-SpecialFunctions.GammaLn(1.5)) : 0) : Math.Exp(logQ);
            return (p * SpecialFunctions.BetaRegularized(j + 0.5, half, x)) + (delta / Math.Sqrt(2) * q * SpecialFunctions.BetaRegularized(j + 1, half, x));
        }

        var sum = 0.0;
        for (var j = mode; j < mode + 10_000; j++)
        {
            var term = Term(j);
            sum += term;
            if (j > mode + 2 && Math.Abs(term) < 1e-17 * Math.Max(1, Math.Abs(sum)))
            {
                break;
            }
        }

        for (var j = mode - 1; j >= 0; j--)
        {
            var term = Term(j);
            sum += term;
            if (Math.Abs(term) < 1e-17 * Math.Max(1, Math.Abs(sum)))
            {
                break;
            }
        }

        return Math.Clamp(lower + (sum / 2), 0, 1);
    }
}
