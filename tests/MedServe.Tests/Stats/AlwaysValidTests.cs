using MedServe.Stats.Experiments;

namespace MedServe.Tests.Stats;

/// <summary>
/// mSPRT by seeded simulation: 200 A/A experiments on a 30% rate, looked at after every 100
/// outcomes per arm up to 5000, reject at most at alpha (within its binomial interval) while the
/// fixed-horizon z-test looked at as often rejects far more; and a real 5-point difference is found.
/// </summary>
public sealed class AlwaysValidTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const double Alpha = 0.05;

    [Fact]
    public void Looking_after_every_100_outcomes_keeps_the_type_one_error_at_alpha_where_a_fixed_test_does_not()
    {
        int alwaysValid = 0, naive = 0;
        for (var experiment = 0; experiment < 200; experiment++)
        {
            var (valid, peeked) = Run(new Random(7000 + experiment), 0.30, 0.30);
            alwaysValid += valid is not null ? 1 : 0;
            naive += peeked ? 1 : 0;
        }

        var upper = Upper(Alpha, 200);
        output.WriteLine($"A/A, 50 looks: mSPRT rejected {alwaysValid} of 200, the repeated fixed-horizon z-test {naive} of 200 (binomial 95% bound at alpha: {upper})");
        Assert.True(alwaysValid <= upper, $"mSPRT rejected {alwaysValid} of 200 A/A experiments");
        Assert.True(naive > upper, $"the naive repeated test rejected only {naive} of 200: the simulation would not show the difference");
    }

    [Fact]
    public void A_real_difference_is_found_and_the_interval_covers_it()
    {
        var found = 0;
        var covered = 0;
        for (var experiment = 0; experiment < 50; experiment++)
        {
            var random = new Random(9000 + experiment);
            var (look, _) = Run(random, 0.30, 0.35);
            found += look is not null ? 1 : 0;
        }

        for (var experiment = 0; experiment < 50; experiment++)
        {
            var test = Trace(new Random(9500 + experiment), 0.30, 0.35);
            covered += test.Interval.Low <= 0.05 && 0.05 <= test.Interval.High ? 1 : 0;
        }

        output.WriteLine($"a 5-point difference: found in {found} of 50 within 5000 per arm; the always-valid interval covered it in {covered} of 50");
        Assert.True(found >= 45);
        Assert.True(covered >= 45);
    }

    [Fact]
    public void One_look_is_the_closed_form()
    {
        // V = 0.0004, tau = 0.05, difference 0.06: Lambda = sqrt(V/(V+tau²)) exp(tau² d² / (2 V (V + tau²))).
        double v = 0.0004, tau = 0.05, d = 0.06;
        var lambda = Math.Sqrt(v / (v + (tau * tau))) * Math.Exp(tau * tau * d * d / (2 * v * (v + (tau * tau))));
        var (p, low, high) = AlwaysValid.Once(d, v, tau);
        Assert.Equal(1 / lambda, p, 12);
        Assert.True(low < d && d < high);
        Assert.Equal(d - low, high - d, 12);
    }

    /// <summary>One experiment: the look (1-based) at which mSPRT rejected, if it did, and whether the fixed test ever did.</summary>
    private static (int? Look, bool Naive) Run(Random random, double pa, double pb)
    {
        var test = new AlwaysValid(0.05, Alpha);
        var z = MathNet.Numerics.Distributions.Normal.InvCDF(0, 1, 1 - (Alpha / 2));
        int? rejected = null;
        var naive = false;
        double sa = 0, sb = 0;
        for (var look = 1; look <= 50; look++)
        {
            for (var i = 0; i < 100; i++)
            {
                sa += random.NextDouble() < pa ? 1 : 0;
                sb += random.NextDouble() < pb ? 1 : 0;
            }

            var n = look * 100.0;
            var (ra, rb) = (sa / n, sb / n);
            var variance = (ra * (1 - ra) / n) + (rb * (1 - rb) / n);
            if (test.Look(rb - ra, variance) < Alpha)
            {
                rejected ??= look;
            }

            naive |= variance > 0 && Math.Abs(rb - ra) / Math.Sqrt(variance) > z;
        }

        return (rejected, naive);
    }

    private static AlwaysValid Trace(Random random, double pa, double pb)
    {
        var test = new AlwaysValid(0.05, Alpha);
        double sa = 0, sb = 0;
        for (var look = 1; look <= 50; look++)
        {
            for (var i = 0; i < 100; i++)
            {
                sa += random.NextDouble() < pa ? 1 : 0;
                sb += random.NextDouble() < pb ? 1 : 0;
            }

            var n = look * 100.0;
            test.Look((sb / n) - (sa / n), ((sa / n) * (1 - (sa / n)) / n) + ((sb / n) * (1 - (sb / n)) / n));
        }

        return test;
    }

    private static int Upper(double p, int n)
    {
        var k = 0;
        while (MathNet.Numerics.Distributions.Binomial.CDF(p, n, k) < 0.975)
        {
            k++;
        }

        return k;
    }
}
