using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using MedServe.Experiments;
using MedServe.IntegrationTests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace MedServe.IntegrationTests;

/// <summary>Experiments: sticky weighted splits, routing over REST and gRPC, a faulty canary rolled back under load, shadows kept out of the answer, promotion, the report.</summary>
public sealed class ExperimentsTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public void A_hundred_thousand_patients_split_within_one_percent_stay_put_and_a_weight_change_moves_only_what_it_must()
    {
        LiveArm[] arms = [new("control", 1, 10), new("b", 2, 30), new("c", 3, 60)];
        var keys = Enumerable.Range(0, 100_000).Select(i => $"p:{i:x8}").ToArray();
        var assigned = keys.Select(k => ExperimentRouter.Assign("salt-1", k, arms).Name).ToArray();

        foreach (var (arm, share) in new[] { ("control", 0.10), ("b", 0.30), ("c", 0.60) })
        {
            Assert.InRange(assigned.Count(a => a == arm) / 100_000.0, share - 0.01, share + 0.01);
        }

        // Deterministic: the same key, the same arm, every time (and in every process: only the hash decides).
        Assert.Equal(assigned, keys.Select(k => ExperimentRouter.Assign("salt-1", k, arms).Name));

        // A rollout step from 5% to 25%: units move only onto the candidate, and about 20% of them.
        LiveArm[] before = [new("control", 1, 95), new("candidate", 2, 5)];
        LiveArm[] after = [new("control", 1, 75), new("candidate", 2, 25)];
        var moves = keys.Select(k => (ExperimentRouter.Assign("salt-2", k, before).Name, ExperimentRouter.Assign("salt-2", k, after).Name)).ToList();
        Assert.DoesNotContain(moves, m => m.Item1 == "candidate" && m.Item2 == "control");
        Assert.InRange(moves.Count(m => m.Item1 != m.Item2) / 100_000.0, 0.19, 0.21);

        // Another experiment's salt assigns independently.
        Assert.InRange(keys.Zip(keys.Select(k => ExperimentRouter.Assign("salt-3", k, arms).Name), (k, a) => a).Zip(assigned).Count(p => p.First == p.Second) / 100_000.0, 0.40, 0.50);
    }

    [Fact]
    public async Task An_experiment_routes_each_patient_to_one_arm_says_so_in_the_answer_and_survives_a_restart()
    {
        var root = Path.Combine(Path.GetTempPath(), "medserve-exp-" + Guid.NewGuid().ToString("N"));
        try
        {
            Dictionary<string, string> first;
            await using (var server = await RunningServer.StartAsync(new Dictionary<string, string?>(), provision: ExperimentModels.Write, root: root))
            {
                using var client = server.Client(server.AdminKey);
                using (var created = await Post(client, "/v1/experiments", """
                    {"name":"ab-1","model":"ab","unit":"patient","arms":[{"name":"control","version":"1","weight":50},{"name":"candidate","version":"3","weight":50}]}
                    """))
                {
                    Assert.Equal(HttpStatusCode.Created, created.StatusCode);
                }

                using (var second = await Post(client, "/v1/experiments", """{"name":"ab-2","model":"ab","arms":[{"name":"x","version":"1","weight":1}]}"""))
                {
                    Assert.Equal(HttpStatusCode.Conflict, second.StatusCode);
                    Assert.Contains("already has an active experiment, 'ab-1'", (await ServerFixture.JsonAsync(second)).GetProperty("error").GetString());
                }

                first = [];
                for (var i = 0; i < 60; i++)
                {
                    var (arm, version) = await Infer(client, $"MRN-AB-{i % 30}", [0.1f, 0.2f, 0.3f]);
                    Assert.Equal(arm == "control" ? "1" : "3", version);
                    if (first.TryGetValue($"MRN-AB-{i % 30}", out var earlier))
                    {
                        Assert.Equal(earlier, arm);
                    }

                    first[$"MRN-AB-{i % 30}"] = arm!;
                }

                Assert.InRange(first.Values.Count(a => a == "control"), 5, 25);

                // A version named explicitly bypasses the experiment.
                using (var direct = await Post(client, "/v2/models/ab/versions/1/infer", Body("MRN-AB-0", [0.1f, 0.2f, 0.3f])))
                {
                    Assert.False((await ServerFixture.JsonAsync(direct)).TryGetProperty("parameters", out _));
                }

                // gRPC says it too.
                using var channel = server.GrpcChannel(server.AdminKey);
                var grpc = new MedServe.Grpc.Protocol.GRPCInferenceService.GRPCInferenceServiceClient(channel);
                var request = new MedServe.Grpc.Protocol.ModelInferRequest { ModelName = "ab" };
                request.Parameters["patient_id"] = new MedServe.Grpc.Protocol.InferParameter { StringParam = "MRN-AB-1" };
                var tensor = new MedServe.Grpc.Protocol.ModelInferRequest.Types.InferInputTensor { Name = "in", Datatype = "FP32", Shape = { 1, 3 } };
                tensor.Contents = new MedServe.Grpc.Protocol.InferTensorContents { Fp32Contents = { 0.1f, 0.2f, 0.3f } };
                request.Inputs.Add(tensor);
                var answer = await grpc.ModelInferAsync(request);
                Assert.Equal(("ab-1", first["MRN-AB-1"]), (answer.Parameters["experiment"].StringParam, answer.Parameters["arm"].StringParam));

                var report = await ServerFixture.JsonAsync(await client.GetAsync("/v1/experiments/ab-1/report"));
                Assert.Equal(61, report.GetProperty("arms").EnumerateArray().Sum(a => a.GetProperty("requests").GetInt32()));
                Assert.Equal(30, report.GetProperty("arms").EnumerateArray().Sum(a => a.GetProperty("units").GetInt32()));
                Assert.False(report.GetProperty("sample_ratio").GetProperty("mismatch").GetBoolean());
                Assert.Contains(report.GetProperty("comparisons").EnumerateArray(), c => c.GetProperty("metric").GetString() == "mean_score" && c.TryGetProperty("always_valid_p", out _));
                Assert.Equal("continue", report.GetProperty("decision").GetProperty("decision").GetString());
            }

            // A restart: the experiment is read back, and every patient lands where it did.
            await using (var again = await RunningServer.StartAsync(new Dictionary<string, string?>(), root: root))
            {
                using var client = again.Client(again.AdminKey);
                await WaitForAsync(() => again.Services.GetRequiredService<ExperimentRouter>().Snapshot.ContainsKey("ab"));
                foreach (var (patient, arm) in first)
                {
                    Assert.Equal(arm, (await Infer(client, patient, [0.1f, 0.2f, 0.3f])).Arm);
                }

                using var promoted = await Post(client, "/v1/experiments/ab-1/promote", """{"arm":"candidate","reason":"faster to review"}""");
                Assert.Equal("promoted", (await ServerFixture.JsonAsync(promoted)).GetProperty("state").GetProperty("status").GetString());
                var (noArm, version) = await Infer(client, "MRN-AB-0", [0.1f, 0.2f, 0.3f]);
                Assert.Equal((null, "3"), (noArm, version));
                var history = await ServerFixture.JsonAsync(await client.GetAsync("/v1/experiments/ab-1"));
                Assert.Equal(["created", "promote"], history.GetProperty("history").EnumerateArray().Select(h => h.GetProperty("event").GetString()));
            }
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task A_canary_that_answers_nan_is_rolled_back_under_load_with_no_failed_request()
    {
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>(), provision: ExperimentModels.Write);
        using var client = server.Client(server.AdminKey);
        using (var created = await Post(client, "/v1/experiments", """
            {"name":"canary-nan","model":"ab","unit":"patient","arms":[{"name":"control","version":"1","weight":1},{"name":"candidate","version":"2","weight":1}],
             "rollout":{"steps":[20,50,100],"min_duration":"PT5S","min_samples":2000},"guardrails":{"max_p99_ratio":1000}}
            """))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        var service = server.Services.GetRequiredService<ExperimentService>();
        var failures = 0;
        var answered = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var load = Enumerable.Range(0, 4).Select(worker => Task.Run(async () =>
        {
            var random = new Random(worker);
            while (!stop.IsCancellationRequested && service.All.Single().State.Status == ExperimentState.Running)
            {
                // Half the inputs sum below zero: the candidate's square root makes those NaN.
                var x = (float)(random.NextDouble() - 0.5);
                using var response = await client.PostAsync("/v2/models/ab/infer", new StringContent(Body($"MRN-C-{random.Next(500)}", [x, x, x]), Encoding.UTF8, "application/json"));
                Interlocked.Increment(ref answered);
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    Interlocked.Increment(ref failures);
                }
            }
        })).ToArray();
        await Task.WhenAll(load);

        var experiment = service.All.Single();
        Assert.Equal(ExperimentState.RolledBack, experiment.State.Status);
        Assert.Contains("invalid outputs", experiment.State.Reason);
        Assert.Equal(0, failures);
        Assert.True(answered > 0);

        // Every unit now goes to the control; the rollback is in the history, the alerts and the journal.
        for (var i = 0; i < 40; i++)
        {
            Assert.Equal("control", (await Infer(client, $"MRN-C-{i}", [0.2f, 0.2f, 0.2f])).Arm);
        }

        var alerts = await ServerFixture.JsonAsync(await client.GetAsync("/v1/alerts"));
        Assert.Contains(alerts.GetProperty("events").EnumerateArray(), e => e.GetProperty("rule").GetString() == "experiment:canary-nan");
        var journal = server.Services.GetRequiredService<MedServe.Compliance.Journal.AuditJournal>();
        await journal.Writer!.FlushAsync();
        Assert.Contains(MedServe.Compliance.Journal.JournalVerifier.Read(journal.Folder, 1, 1_000_000), r => r.Entry.Action == "experiment rolled back");
    }

    [Fact]
    public async Task A_slow_canary_is_rolled_back_on_its_p99_and_the_cli_shows_why()
    {
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>(), provision: ExperimentModels.Write);
        using var client = server.Client(server.AdminKey);
        using (var created = await Post(client, "/v1/experiments", """
            {"name":"canary-slow","model":"ab","arms":[{"name":"control","version":"1","weight":1},{"name":"candidate","version":"3","weight":1}],
             "rollout":{"steps":[50,100],"min_duration":"PT1H","min_samples":100000},"guardrails":{"min_samples":20}}
            """))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        var service = server.Services.GetRequiredService<ExperimentService>();
        var failures = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await Task.WhenAll(Enumerable.Range(0, 4).Select(worker => Task.Run(async () =>
        {
            var random = new Random(100 + worker);
            while (!stop.IsCancellationRequested && service.All.Single().State.Status == ExperimentState.Running)
            {
                using var response = await Post(client, "/v2/models/ab/infer", Body($"MRN-L-{random.Next(1000)}", [0.1f, 0.1f, 0.1f]));
                if (response.StatusCode != HttpStatusCode.OK)
                {
                    Interlocked.Increment(ref failures);
                }
            }
        })));

        var state = service.All.Single().State;
        Assert.Equal(ExperimentState.RolledBack, state.Status);
        Assert.Contains("p99 latency", state.Reason);
        Assert.Equal(0, failures);

        var printed = new StringWriter();
        var previous = Console.Out;
        Console.SetOut(printed);
        try
        {
            Assert.Equal(0, await new System.CommandLine.RootCommand { MedServe.Cli.ExperimentsCommand.Create() }
                .Parse(["experiments", "get", "canary-slow", "--server", server.HttpAddress.ToString(), "--api-key", server.AdminKey]).InvokeAsync());
        }
        finally
        {
            Console.SetOut(previous);
        }

        Assert.Contains("\"status\": \"rolled_back\"", printed.ToString());
        Assert.Contains("\"event\": \"rolled_back\"", printed.ToString());
    }

    [Fact]
    public async Task A_candidate_whose_auroc_is_inferior_on_the_outcomes_is_rolled_back()
    {
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>(), provision: ExperimentModels.Write);
        using var client = server.Client(server.AdminKey);
        using (var created = await Post(client, "/v1/experiments", """
            {"name":"canary-auroc","model":"ab","arms":[{"name":"control","version":"1","weight":1},{"name":"candidate","version":"4","weight":1}],
             "rollout":{"steps":[50,100],"min_duration":"PT1H","min_samples":100000},"guardrails":{"max_p99_ratio":1000}}
            """))
        {
            // The p99 guardrail is set out of reach: on a loaded machine two equal arms' p99s differ by chance, and this test is about outcomes.
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        // 300 patients; the outcome follows the sum of the inputs, which version 4 ranks backwards.
        var random = new Random(12);
        var outcomes = new List<object>();
        var byArm = new Dictionary<string, (List<double> Scores, List<double> Labels)> { ["control"] = ([], []), ["candidate"] = ([], []) };
        for (var i = 0; i < 300; i++)
        {
            var x = (float)(random.NextDouble() - 0.5);
            using var response = await Post(client, "/v2/models/ab/infer", Body($"MRN-O-{i}", [x, x, x]));
            var json = await ServerFixture.JsonAsync(response);
            var label = random.NextDouble() < 1 / (1 + Math.Exp(-12 * x)) ? 1 : 0;
            var arm = byArm[json.GetProperty("parameters").GetProperty("arm").GetString()!];
            arm.Scores.Add((float)json.GetProperty("outputs")[0].GetProperty("data")[0].GetDouble());
            arm.Labels.Add(label);
            outcomes.Add(new { model = "ab", patient_id = $"MRN-O-{i}", observed_at = DateTimeOffset.UtcNow.AddMinutes(1).ToString("O"), label });
        }

        using (await Post(client, "/v1/outcomes", JsonSerializer.Serialize(outcomes)))
        {
        }

        await server.Services.GetRequiredService<RolloutController>().EvaluateOnceAsync(DateTimeOffset.UtcNow.AddSeconds(30));

        var state = server.Services.GetRequiredService<ExperimentService>().All.Single().State;
        Assert.Equal(ExperimentState.RolledBack, state.Status);
        Assert.Contains("non-inferiority failed", state.Reason); // Brier or AUROC, whichever the report lists first: both fail here
        var report = await ServerFixture.JsonAsync(await client.GetAsync("/v1/experiments/canary-auroc/report"));
        var auroc = report.GetProperty("comparisons").EnumerateArray().Single(c => c.GetProperty("metric").GetString() == "auroc");
        Assert.True(auroc.GetProperty("always_valid_ci_high").GetDouble() < -0.05);
        Assert.Equal("stop for harm", report.GetProperty("decision").GetProperty("decision").GetString());

        // The report's figures are the statistics engine's on the same scores and labels.
        var arms = report.GetProperty("arms").EnumerateArray().ToDictionary(a => a.GetProperty("name").GetString()!);
        foreach (var (name, (scores, labels)) in byArm)
        {
            Assert.Equal(MedServe.Stats.Clinical.ClinicalMetrics.Auroc(labels, scores), arms[name].GetProperty("auroc").GetProperty("value").GetDouble(), 12);
            Assert.Equal(MedServe.Stats.Clinical.ClinicalMetrics.Brier(labels, scores), arms[name].GetProperty("brier").GetProperty("value").GetDouble(), 12);
        }

        var mean = report.GetProperty("comparisons").EnumerateArray().Single(c => c.GetProperty("metric").GetString() == "mean_score");
        Assert.Equal(MedServe.Stats.Tests.HypothesisTests.WelchTTest(byArm["candidate"].Scores, byArm["control"].Scores).P, mean.GetProperty("p_value").GetDouble(), 12);
        var (aucA, varA) = MedServe.Stats.Clinical.ClinicalMetrics.AurocWithVariance(byArm["control"].Labels, byArm["control"].Scores);
        var (aucB, varB) = MedServe.Stats.Clinical.ClinicalMetrics.AurocWithVariance(byArm["candidate"].Labels, byArm["candidate"].Scores);
        var always = MedServe.Stats.Experiments.AlwaysValid.Once(aucB - aucA, varA + varB, 0.05);
        Assert.Equal(always.P, auroc.GetProperty("always_valid_p").GetDouble(), 12);
        Assert.Equal(always.High, auroc.GetProperty("always_valid_ci_high").GetDouble(), 12);
    }

    [Fact]
    public async Task A_slow_shadow_holds_no_answer_back()
    {
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>(), provision: ExperimentModels.Write);
        using var client = server.Client(server.AdminKey);
        using (var created = await Post(client, "/v1/experiments", """
            {"name":"slow-shadow","model":"ab","arms":[{"name":"primary","version":"1","weight":1}],"shadow":[{"name":"slow","version":"5"}]}
            """))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        var latencies = new List<double>();
        for (var i = 0; i < 40; i++)
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            Assert.Equal("primary", (await Infer(client, $"MRN-H-{i}", [0.1f, 0.2f, 0.3f])).Arm);
            latencies.Add(watch.Elapsed.TotalMilliseconds);
        }

        // The shadow's own run takes tens of milliseconds of matrix products; the answers did not wait for it.
        var (_, shadows, _) = server.Services.GetRequiredService<ExperimentService>().StatisticsOf("slow-shadow");
        await WaitForAsync(() => shadows.TryGetValue("slow", out var s) && s.Compared + s.Failed + s.Dropped == 40);
        var primaryP50 = latencies.Order().ElementAt(20);
        var slow = server.Services.GetRequiredService<MedServe.Lifecycle.ModelManager>().Find("ab", "5").Statistics.Success;
        var shadowLatency = slow.Nanoseconds / 1e6 / Math.Max(1, slow.Count);
        output.WriteLine($"the primary's median {primaryP50:0.0} ms, the shadow's mean {shadowLatency:0.0} ms");
        Assert.True(primaryP50 < shadowLatency, $"the primary's median {primaryP50:0.0} ms should be below the shadow's mean {shadowLatency:0.0} ms");
        Assert.True(shadows["slow"].Dropped > 0 || shadows["slow"].Compared > 0);
    }

    [Fact]
    public async Task Shadows_that_fail_or_answer_nan_change_no_answer()
    {
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>(), provision: ExperimentModels.Write);
        using var client = server.Client(server.AdminKey);
        using (var created = await Post(client, "/v1/experiments", """
            {"name":"shadowed","model":"ab","arms":[{"name":"primary","version":"1","weight":1}],"shadow":[{"name":"nan","version":"2"},{"name":"missing","version":"9"}]}
            """))
        {
            // A shadow must be loaded too: version 9 is not.
            Assert.Equal(HttpStatusCode.BadRequest, created.StatusCode);
        }

        using (var created = await Post(client, "/v1/experiments", """
            {"name":"shadowed","model":"ab","arms":[{"name":"primary","version":"1","weight":1}],"shadow":[{"name":"nan","version":"2"}]}
            """))
        {
            Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        }

        for (var i = 0; i < 50; i++)
        {
            var x = i % 2 == 0 ? -0.3f : 0.3f;
            using var response = await Post(client, "/v2/models/ab/infer", Body($"MRN-S-{i}", [x, x, x]));
            var json = await ServerFixture.JsonAsync(response);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("primary", json.GetProperty("parameters").GetProperty("arm").GetString());
            Assert.Equal(1 / (1 + Math.Exp(-3 * x)), json.GetProperty("outputs")[0].GetProperty("data")[0].GetDouble(), 5);
        }

        var (_, shadows, _) = server.Services.GetRequiredService<ExperimentService>().StatisticsOf("shadowed");
        await WaitForAsync(() => shadows.TryGetValue("nan", out var s) && s.Compared + s.Failed + s.Dropped == 50);
        var nan = shadows["nan"];
        Assert.Equal(25, nan.Compared); // the positive sums agree with the primary
        Assert.Equal(1.0, nan.Agreement);
        Assert.Equal(25, nan.Failed + nan.Dropped); // NaN: no score to compare, counted, never answered
    }

    private static async Task<(string? Arm, string Version)> Infer(HttpClient client, string patient, float[] x)
    {
        using var response = await Post(client, "/v2/models/ab/infer", Body(patient, x));
        var json = await ServerFixture.JsonAsync(response);
        Assert.True(response.StatusCode == HttpStatusCode.OK, json.ToString());
        var arm = json.TryGetProperty("parameters", out var p) ? p.GetProperty("arm").GetString() : null;
        return (arm, json.GetProperty("model_version").GetString()!);
    }

    private static string Body(string patient, float[] x) =>
        JsonSerializer.Serialize(new { parameters = new { patient_id = patient }, inputs = new[] { new { name = "in", shape = new[] { 1, 3 }, datatype = "FP32", data = x } } });

    private static Task<HttpResponseMessage> Post(HttpClient client, string path, string json) =>
        client.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));

    private static async Task WaitForAsync(Func<bool> condition)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (!condition())
        {
            await Task.Delay(20, deadline.Token);
        }
    }
}
