using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json;
using MedServe.Alerts;
using MedServe.IntegrationTests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace MedServe.IntegrationTests;

/// <summary>Alert rules evaluated at chosen times, their events signed to a local webhook receiver (retried past a failure), and GET /v1/alerts.</summary>
public sealed class AlertsTests
{
    private const string Secret = "a-webhook-secret-of-some-length";

    [Fact]
    public async Task A_rule_fires_and_resolves_and_each_event_reaches_the_webhook_signed_after_a_retry()
    {
        await using var receiver = await Receiver.StartAsync(failFirst: 1);
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>
        {
            // No background pass: the test evaluates at the times it chooses.
            ["MedServe:Alerts:Enabled"] = "false",
            ["MedServe:Alerts:RetryBaseDelay"] = "00:00:00.050",
            ["MedServe:Alerts:Webhooks:0:Name"] = "pager",
            ["MedServe:Alerts:Webhooks:0:Url"] = receiver.Url,
            ["MedServe:Alerts:Webhooks:0:Secret"] = Secret,
        });
        using var client = server.Client(server.AdminKey);
        var evaluator = server.Services.GetRequiredService<AlertEvaluator>();

        Assert.Equal(HttpStatusCode.OK, (await PutRule(client, "busy", """{"name":"busy","model":"risk","metric":"request_rate","above":0.1,"window":"PT1M","min_samples":2,"webhooks":["pager"]}""")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await PutRule(client, "held", """{"name":"held","model":"risk","metric":"request_rate","above":0.1,"window":"PT1M","min_samples":2,"hold_off":"PT10M","webhooks":[]}""")).StatusCode);
        var bad = await PutRule(client, "x", """{"name":"x","model":"risk","metric":"lactate","above":1}""");
        Assert.Contains("'metric' must be one of", (await ServerFixture.JsonAsync(bad)).GetProperty("error").GetString());
        var nowhere = await PutRule(client, "y", """{"name":"y","model":"risk","metric":"error_rate","above":0.1,"webhooks":["http://attacker.example/"]}""");
        Assert.Contains("no webhook is configured as", (await ServerFixture.JsonAsync(nowhere)).GetProperty("error").GetString());

        var t0 = DateTimeOffset.UtcNow;
        Assert.Empty(await evaluator.EvaluateOnceAsync(t0));
        for (var i = 0; i < 10; i++)
        {
            using var response = await client.PostAsync("/v2/models/risk/infer", new StringContent(
                $$"""{"parameters":{"patient_id":"MRN-ALERT-{{i}}"},"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[{{string.Join(",", Enumerable.Repeat("0.5", 30))}}]}]}""",
                Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // 10 requests in the 30 s since the baseline: 0.33/s, above 0.1.
        var fired = await evaluator.EvaluateOnceAsync(t0.AddSeconds(30));
        Assert.Equal(["busy:firing", "held:firing"], fired.Select(e => $"{e.Rule}:{e.State}").Order());
        Assert.Equal(10.0 / 30, fired[0].Value!.Value, 9);

        // Both webhook deliveries (each rule names pager or every webhook) land, the first after a 500 and a retry.
        var deliveries = await receiver.WaitForAsync(3);
        Assert.Equal(HttpStatusCode.InternalServerError, deliveries[0].Answered);
        foreach (var delivery in deliveries)
        {
            Assert.Equal(WebhookSender.Sign(Secret, delivery.Timestamp, delivery.Body), delivery.Signature);
            Assert.DoesNotContain("MRN-ALERT", Encoding.UTF8.GetString(delivery.Body));
        }

        var firing = JsonDocument.Parse(deliveries[^1].Body).RootElement;
        Assert.Equal(("firing", "risk", "request_rate", 0.1), (firing.GetProperty("state").GetString(), firing.GetProperty("model").GetString(), firing.GetProperty("metric").GetString(), firing.GetProperty("above").GetDouble()));

        // Two minutes on, the window holds no requests: busy resolves; held stays firing inside its 10-minute hold-off.
        var resolved = await evaluator.EvaluateOnceAsync(t0.AddSeconds(150));
        Assert.Equal(["busy:resolved"], resolved.Select(e => $"{e.Rule}:{e.State}"));
        await receiver.WaitForAsync(4);

        var alerts = await ServerFixture.JsonAsync(await client.GetAsync("/v1/alerts"));
        var states = alerts.GetProperty("rules").EnumerateArray().ToDictionary(r => r.GetProperty("name").GetString()!, r => r.GetProperty("state").GetString());
        Assert.Equal(new Dictionary<string, string?> { ["busy"] = "ok", ["held"] = "firing" }, states);
        Assert.Equal(["resolved", "firing", "firing"], alerts.GetProperty("events").EnumerateArray().Select(e => e.GetProperty("state").GetString()));
        Assert.Equal(HttpStatusCode.NoContent, (await client.DeleteAsync("/v1/alerts/rules/held")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.DeleteAsync("/v1/alerts/rules/held")).StatusCode);
    }

    [Fact]
    public void An_output_that_is_nan_infinite_or_outside_its_declared_range_is_invalid()
    {
        var spec = new MedServe.Repository.MonitoringSpec { OutputMin = 0, OutputMax = 1 };
        MedServe.Predictions.DecodedPrediction With(float value) => new([], [new MedServe.Predictions.LoggedTensor("p", MedServe.Tensors.TensorDataType.Fp32, [1, 1], BitConverter.GetBytes(value), null, null)], false, new Dictionary<string, string>());

        Assert.False(MonitoredFigures.InvalidOutput(With(0.3f), spec));
        Assert.True(MonitoredFigures.InvalidOutput(With(float.NaN), spec));
        Assert.True(MonitoredFigures.InvalidOutput(With(float.PositiveInfinity), MedServe.Repository.MonitoringSpec.Default));
        Assert.True(MonitoredFigures.InvalidOutput(With(1.5f), spec));
        Assert.False(MonitoredFigures.InvalidOutput(With(1.5f), MedServe.Repository.MonitoringSpec.Default));
    }

    private static Task<HttpResponseMessage> PutRule(HttpClient client, string name, string json) =>
        client.PutAsync($"/v1/alerts/rules/{name}", new StringContent(json, Encoding.UTF8, "application/json"));
}
