using System.Text;
using System.Text.Json;
using MedServe.Outcomes;
using MedServe.Repository;

namespace MedServe.IntegrationTests;

/// <summary>The performance report's subgroup gaps and flags, and its regression figures, on cohorts built to show them.</summary>
public sealed class PerformanceReportTests
{
    [Fact]
    public void A_subgroup_the_model_fails_is_flagged_and_one_it_serves_well_is_not()
    {
        // Ward A: labels follow the score closely. Ward B: labels unrelated to the score.
        var random = new Random(5);
        var judged = new List<JudgedPrediction>();
        for (var i = 0; i < 600; i++)
        {
            var score = random.NextDouble();
            var ward = i % 3 == 0 ? "B" : "A";
            var label = ward == "A" ? (random.NextDouble() < (score * score * 0.9) + 0.05 ? 1 : 0) : (random.NextDouble() < 0.4 ? 1 : 0);
            judged.Add(new JudgedPrediction(score, label, null, new Dictionary<string, string> { ["ward"] = ward }));
        }

        judged.Add(new JudgedPrediction(0.9, 1, null, new Dictionary<string, string> { ["ward"] = "C" })); // too few to judge

        var report = Write(judged, new MonitoringSpec { Subgroups = ["ward"], SubgroupMargin = 0.05 });

        var wards = report.GetProperty("subgroups").GetProperty("ward").EnumerateArray().ToDictionary(w => w.GetProperty("value").GetString()!);
        Assert.True(wards["B"].GetProperty("gaps").GetProperty("auroc").GetProperty("flagged").GetBoolean());
        Assert.True(wards["B"].GetProperty("gaps").GetProperty("auroc").GetProperty("versus_rest").GetProperty("ci_high").GetDouble() < 0);
        Assert.False(wards["A"].GetProperty("gaps").GetProperty("auroc").GetProperty("flagged").GetBoolean());
        Assert.StartsWith("performance needs at least 20", wards["C"].GetProperty("insufficient").GetString());

        // The gap is the subgroup's AUROC minus the whole's.
        var whole = report.GetProperty("metrics").GetProperty("auroc").GetProperty("value").GetDouble();
        Assert.Equal(wards["B"].GetProperty("metrics").GetProperty("auroc").GetProperty("value").GetDouble() - whole,
            wards["B"].GetProperty("gaps").GetProperty("auroc").GetProperty("gap").GetDouble(), 12);
    }

    [Fact]
    public void Value_outcomes_get_regression_figures_equal_to_the_engine()
    {
        var random = new Random(9);
        var judged = Enumerable.Range(0, 50).Select(i =>
        {
            var value = 40 + (i * 0.7);
            return new JudgedPrediction(value + (random.NextDouble() * 4) - 1, null, value, new Dictionary<string, string>());
        }).ToList();

        var report = Write(judged, MonitoringSpec.Default);

        var expected = MedServe.Stats.Clinical.RegressionMetrics.Compute([.. judged.Select(j => j.Value!.Value)], [.. judged.Select(j => j.Score)]);
        var regression = report.GetProperty("regression");
        Assert.Equal(50, regression.GetProperty("n").GetInt32());
        Assert.Equal(expected.MeanAbsoluteError.Value, regression.GetProperty("mae").GetProperty("value").GetDouble(), 12);
        Assert.Equal(expected.MeanError.Low, regression.GetProperty("mean_error").GetProperty("ci_low").GetDouble(), 12);
        Assert.Equal(expected.RSquared, regression.GetProperty("r2").GetProperty("value").GetDouble(), 12);
        Assert.StartsWith("performance needs at least 20", report.GetProperty("insufficient").GetString());
    }

    private static JsonElement Write(IReadOnlyList<JudgedPrediction> judged, MonitoringSpec spec)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            PerformanceReport.Write(w, judged, spec, spec.Threshold);
            w.WriteEndObject();
        }

        return JsonDocument.Parse(Encoding.UTF8.GetString(buffer.ToArray())).RootElement;
    }
}
