using MathNet.Numerics;

namespace MedServe.Stats.Tests;

/// <summary>
/// The two-sample Kolmogorov-Smirnov test as scipy 1.10 <c>ks_2samp(method="asymp")</c> computes
/// it: D is the largest gap between the two empirical CDFs, and the p-value is the survival
/// function of the one-sample two-sided statistic D_n at n = round(n1 n2 / (n1 + n2)), which
/// scipy evaluates with Simard and L'Ecuyer's (2011) choice among exact and asymptotic methods.
/// MathNet has no finite-n Kolmogorov distribution, so the methods are written here: Durbin's
/// matrix (Marsaglia, Tsang and Wang 2003), Pomeranz's recursion (1974), Pelz and Good's series
/// (1976), and Smirnov's one-sided sum (Birnbaum and Tingey 1951).
/// </summary>
public static class KolmogorovSmirnov
{
    public static (double D, double P) TwoSample(IReadOnlyList<double> reference, IReadOnlyList<double> current)
    {
        Require.NonEmpty(reference, "reference");
        Require.NonEmpty(current, "current");
        Require.Finite(reference, "reference");
        Require.Finite(current, "current");
        var a = reference.Order().ToArray();
        var b = current.Order().ToArray();
        double d = 0;
        int i = 0, j = 0;
        while (i < a.Length || j < b.Length)
        {
            // Step past every copy of the next value on both sides, then compare the CDFs there.
            var next = j >= b.Length || (i < a.Length && a[i] <= b[j]) ? a[i] : b[j];
            while (i < a.Length && a[i] == next)
            {
                i++;
            }

            while (j < b.Length && b[j] == next)
            {
                j++;
            }

            d = Math.Max(d, Math.Abs(((double)i / a.Length) - ((double)j / b.Length)));
        }

        double m = Math.Max(a.Length, b.Length), n = Math.Min(a.Length, b.Length);
        var en = (int)Math.Round(m * n / (m + n), MidpointRounding.ToEven);
        return (d, Math.Clamp(TwoSidedSurvival(en, d), 0, 1));
    }

    /// <summary>P(D_n &gt; x) for the one-sample two-sided statistic, by scipy's choice of method.</summary>
    public static double TwoSidedSurvival(int n, double x)
    {
        if (x >= 1)
        {
            return 0;
        }

        if (x <= 0)
        {
            return 1;
        }

        var t = n * x;
        if (t <= 1)
        {
            // Ruben and Gambino: exact for 1/2n <= x <= 1/n.
            if (t <= 0.5)
            {
                return 1;
            }

            var cdf = n <= 140
                ? Enumerable.Range(1, n).Aggregate(1.0, (p, i) => p * (i * (1.0 / n) * ((2 * t) - 1)))
                : Math.Exp(LogFactorialOverPower(n) + (n * Math.Log((2 * t) - 1)));
            return Clip(1 - cdf);
        }

        if (t >= n - 1)
        {
            return Clip(2 * Math.Pow(1 - x, n));
        }

        if (x >= 0.5)
        {
            return Clip(2 * SmirnovSurvival(n, x));
        }

        var nxSquared = t * x;
        if (n <= 140)
        {
            if (nxSquared <= 0.754693)
            {
                return Clip(1 - Durbin(n, x));
            }

            return nxSquared <= 4 ? Clip(1 - Pomeranz(n, x)) : Clip(2 * SmirnovSurvival(n, x));
        }

        if (nxSquared >= 370)
        {
            return 0;
        }

        if (nxSquared >= 2.2)
        {
            return Clip(2 * SmirnovSurvival(n, x));
        }

        var lower = n <= 100_000 && n * Math.Pow(x, 1.5) <= 1.4 ? Durbin(n, x) : PelzGood(n, x);
        return Clip(1 - lower);
    }

    /// <summary>
    /// P(D+_n &gt; x), the one-sided statistic: Birnbaum and Tingey's sum
    /// x * sum_{v=0}^{floor(n(1-x))} C(n, v) (1 - x - v/n)^(n-v) (x + v/n)^(v-1), every term
    /// positive, each computed in logarithms so none overflows.
    /// </summary>
    public static double SmirnovSurvival(int n, double x)
    {
        if (n == 1)
        {
            return 1 - x;
        }

        if (x <= 0)
        {
            return 1;
        }

        if (x >= 1)
        {
            return 0;
        }

        var nx = n * x;
        if (nx <= 1)
        {
            return Clip(1 - (x * Math.Pow(1 + x, n - 1)));
        }

        if (-2 * n * x * x < -745.1332191019412)
        {
            return 0;
        }

        if (Math.Floor(nx) >= n - 1)
        {
            return Math.Pow(1 - x, n);
        }

        if (n > 1_000_000)
        {
            // scipy's approximation beyond a million: p ~ exp(-(6nx + 1)^2 / 18n).
            var logp = -Math.Pow((6.0 * n * x) + 1, 2) / 18.0 / n;
            return logp < -Math.Log(2) ? Math.Exp(logp) : 1 + double.ExpM1(logp);
        }

        var last = (int)Math.Floor(n * (1 - x));
        if (n - (n * x) - last == 0)
        {
            last--; // a term with 1 - x - v/n = 0 is zero
        }

        var logN = SpecialFunctions.FactorialLn(n);
        double sum = 0;
        for (var v = 0; v <= last; v++)
        {
            var logTerm = logN - SpecialFunctions.FactorialLn(v) - SpecialFunctions.FactorialLn(n - v)
                + ((n - v) * Math.Log(1 - x - ((double)v / n)))
                + ((v - 1) * Math.Log(x + ((double)v / n)));
            sum += Math.Exp(logTerm);
        }

        return Clip(x * sum);
    }

    /// <summary>P(D_n &lt;= d) by Durbin's matrix: the k-th diagonal entry of H^n, scaled by n!/n^n.</summary>
    private static double Durbin(int n, double d)
    {
        var nd = n * d;
        if (nd <= 0.5)
        {
            return 0;
        }

        var k = (int)Math.Ceiling(nd);
        var h = k - nd;
        var m = (2 * k) - 1;
        var H = new double[m, m];
        var v = new double[m];
        var w = new double[m];
        var factorial = 1.0;
        for (var j = 1; j <= m; j++)
        {
            w[j - 1] = factorial;
            factorial /= j;
            v[j - 1] = (1 - Math.Pow(h, j)) * factorial;
        }

        v[m - 1] = (1 + Math.Pow(Math.Max((2 * h) - 1, 0), m) - (2 * Math.Pow(h, m))) * factorial;
        for (var i = 1; i < m; i++)
        {
            for (var r = i - 1; r < m; r++)
            {
                H[r, i] = w[r - i + 1];
            }
        }

        for (var r = 0; r < m; r++)
        {
            H[r, 0] = v[r];
            H[m - 1, r] = v[m - 1 - r];
        }

        // H^n by squaring, rescaled by 2^-128 whenever the diagonal entry grows past 2^128.
        var power = Identity(m);
        int exponent = 0, hExponent = 0;
        for (var remaining = n; remaining > 0; remaining /= 2)
        {
            if (remaining % 2 == 1)
            {
                power = Multiply(power, H);
                exponent += hExponent;
            }

            H = Multiply(H, H);
            hExponent *= 2;
            if (Math.Abs(H[k - 1, k - 1]) > Scale)
            {
                Divide(H, Scale);
                hExponent += 128;
            }
        }

        var p = power[k - 1, k - 1];
        for (var i = 1; i <= n; i++)
        {
            p = i * p / n;
            if (Math.Abs(p) < 1 / Scale)
            {
                p *= Scale;
                exponent -= 128;
            }
        }

        return Clip(Math.ScaleB(p, exponent));
    }

    /// <summary>P(D_n &lt;= x) by Pomeranz's recursion over 2n + 1 rows of truncated Poisson convolutions.</summary>
    private static double Pomeranz(int n, double x)
    {
        var t = n * x;
        var ll = (int)Math.Floor(t);
        var f = t - ll;
        var g = Math.Min(f, 1 - f);
        var ceilF = f > 0 ? 1 : 0;
        var roundF = f > 0.5 ? 1 : 0;
        var powers = 2 * (ll + 1);
        var gPower = new double[powers];
        var twoGPower = new double[powers];
        var oneMinusTwoGPower = new double[powers];
        gPower[0] = twoGPower[0] = oneMinusTwoGPower[0] = 1;
        for (var m = 1; m < powers; m++)
        {
            gPower[m] = gPower[m - 1] * (g / n) / m;
            twoGPower[m] = twoGPower[m - 1] * (2 * g / n) / m;
            oneMinusTwoGPower[m] = oneMinusTwoGPower[m - 1] * ((1 - (2 * g)) / n) / m;
        }

        var v0 = new double[powers];
        var v1 = new double[powers];
        v1[0] = 1;
        int v0Start = 0, v1Start = 0, exponent = 0;
        var (j1, j2) = PomeranzBounds(0, n, ll, ceilF, roundF);
        for (var i = 1; i < (2 * n) + 2; i++)
        {
            var k1 = j1;
            (v0, v1) = (v1, v0);
            (v0Start, v1Start) = (v1Start, v0Start);
            Array.Clear(v1);
            (j1, j2) = PomeranzBounds(i, n, ll, ceilF, roundF);
            var weights = i == 1 || i == (2 * n) + 1 ? gPower : i % 2 == 1 ? twoGPower : oneMinusTwoGPower;
            var length = j2 - k1 + 1;
            if (length <= 0)
            {
                continue;
            }

            // The entries j1..j2 of the convolution of the previous row (from k1) with the weights.
            var offset = j1 - k1;
            var max = 0.0;
            for (var c = 0; c <= j2 - j1; c++)
            {
                var index = offset + c;
                double sum = 0;
                var available = Math.Min(length, v0.Length - (k1 - v0Start));
                for (var s = Math.Max(0, index - (length - 1)); s <= Math.Min(index, available - 1); s++)
                {
                    sum += v0[k1 - v0Start + s] * weights[index - s];
                }

                v1[c] = sum;
                max = Math.Max(max, sum);
            }

            if (max > 0 && max < 1 / Scale)
            {
                for (var c = 0; c < v1.Length; c++)
                {
                    v1[c] *= Scale;
                }

                exponent -= 128;
            }

            v1Start = v0Start + j1 - k1;
        }

        var answer = v1[n - v1Start];
        for (var m = 1; m <= n; m++)
        {
            if (Math.Abs(answer) > Scale)
            {
                answer /= Scale;
                exponent += 128;
            }

            answer *= m;
        }

        return Clip(Math.ScaleB(answer, exponent));
    }

    private static (int J1, int J2) PomeranzBounds(int i, int n, int ll, int ceilF, int roundF)
    {
        int j1, j2;
        if (i == 0)
        {
            (j1, j2) = (-ll - ceilF - 1, ll + ceilF - 1);
        }
        else
        {
            var (half, odd) = (Math.DivRem(i + 1, 2, out var rem), rem);
            if (odd == 0)
            {
                (j1, j2) = half == n + 1
                    ? (n - ll - ceilF - 1, n + ll + ceilF - 1)
                    : (half - 1 - ll - roundF - 1, half + ll - 1 + ceilF - 1);
            }
            else
            {
                (j1, j2) = (half - 1 - ll - 1, half + ll + roundF - 1);
            }
        }

        return (Math.Max(j1 + 2, 0), Math.Min(j2, n));
    }

    /// <summary>P(D_n &lt;= x) by Pelz and Good's expansion in 1/sqrt(n), its terms in Jacobi theta form for small z = x sqrt(n).</summary>
    private static double PelzGood(int n, double x)
    {
        var z = Math.Sqrt(n) * x;
        double z2 = z * z, z3 = z2 * z, z4 = z2 * z2, z6 = z4 * z2;
        double pi2 = Math.PI * Math.PI, pi4 = pi2 * pi2, pi6 = pi4 * pi2;
        var qLog = -pi2 / 8 / z2;
        if (qLog < -708)
        {
            return 0;
        }

        var q = Math.Exp(qLog);
        double k1a = -z2, k1b = pi2 / 4;
        double k2a = (6 * z6) + (2 * z4), k2b = ((2 * z4) - (5 * z2)) * pi2 / 4, k2c = pi4 * (1 - (2 * z2)) / 16;
        double k3d = pi6 * (5 - (30 * z2)) / 64, k3c = pi4 * ((-60 * z2) + (212 * z4)) / 16;
        double k3b = pi2 * ((135 * z4) - (96 * z6)) / 4, k3a = (-30 * z6) - (90 * Math.Pow(z, 8));
        var terms = new double[4];
        var maxK = (int)Math.Ceiling(16 * z / Math.PI);
        for (var k = maxK; k >= 1; k--)
        {
            var m = (2.0 * k) - 1;
            double m2 = m * m, m4 = m2 * m2, m6 = m4 * m2;
            var qPower = Math.Pow(q, 8 * k);
            var coefficients = new[] { 1.0, k1a + (k1b * m2), k2a + (k2b * m2) + (k2c * m4), k3a + (k3b * m2) + (k3c * m4) + (k3d * m6) };
            for (var c = 0; c < 4; c++)
            {
                terms[c] = (terms[c] * qPower) + coefficients[c];
            }
        }

        var sqrt2Pi = Math.Sqrt(2 * Math.PI);
        var divisors = new[] { z, 6 * z4, 72 * Math.Pow(z, 7), 6480 * Math.Pow(z, 10) };
        for (var c = 0; c < 4; c++)
        {
            terms[c] = terms[c] * q * sqrt2Pi / divisors[c];
        }

        var q2 = Math.Exp(-pi2 / 2 / z2);
        double k2Extra = 0, k3Extra = 0;
        var sqrt3z = Math.Sqrt(3) * z;
        for (var k = maxK; k >= 1; k--)
        {
            var k2 = (double)k * k;
            var qk = Math.Pow(q2, k2);
            k2Extra += k2 * qk;
            k3Extra += (sqrt3z + (Math.PI * k)) * (sqrt3z - (Math.PI * k)) * k2 * qk;
        }

        terms[2] += k2Extra * pi2 * sqrt2Pi / (-36 * z3);
        terms[3] += k3Extra * pi2 * sqrt2Pi / (216 * z6);
        double sum = 0;
        for (var c = 0; c < 4; c++)
        {
            sum += terms[c] / Math.Pow(n, c / 2.0);
        }

        return sum;
    }

    private const double Scale = 3.402823669209385e38; // 2^128

    private static double LogFactorialOverPower(int n)
    {
        // log(n! / n^n), by Stirling's series with n log n taken out first (no cancellation).
        double[] coefficients = [-2.955065359477124183e-2, 6.4102564102564102564e-3, -1.9175269175269175269e-3, 8.4175084175084175084e-4,
            -5.952380952380952381e-4, 7.9365079365079365079e-4, -2.7777777777777777778e-3, 8.3333333333333333333e-2];
        var rn = 1.0 / n;
        var polynomial = coefficients.Aggregate(0.0, (acc, c) => (acc * (rn / n)) + c);
        return (Math.Log(n) / 2) - n + (Math.Log(2 * Math.PI) / 2) + (rn * polynomial);
    }

    private static double Clip(double p) => Math.Clamp(p, 0, 1);

    private static double[,] Identity(int m)
    {
        var identity = new double[m, m];
        for (var i = 0; i < m; i++)
        {
            identity[i, i] = 1;
        }

        return identity;
    }

    private static double[,] Multiply(double[,] a, double[,] b)
    {
        var m = a.GetLength(0);
        var product = new double[m, m];
        for (var i = 0; i < m; i++)
        {
            for (var k = 0; k < m; k++)
            {
                var aik = a[i, k];
                if (aik == 0)
                {
                    continue;
                }

                for (var j = 0; j < m; j++)
                {
                    product[i, j] += aik * b[k, j];
                }
            }
        }

        return product;
    }

    private static void Divide(double[,] a, double by)
    {
        for (var i = 0; i < a.GetLength(0); i++)
        {
            for (var j = 0; j < a.GetLength(1); j++)
            {
                a[i, j] /= by;
            }
        }
    }
}
