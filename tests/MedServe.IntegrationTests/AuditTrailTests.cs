using System.Net;
using System.Text.Json;
using MedServe.Compliance.Audit;
using MedServe.Compliance.Journal;
using MedServe.IntegrationTests.Support;

namespace MedServe.IntegrationTests;

/// <summary>What lands in the audit trail for inference (REST and gRPC), refusals and key changes, and how it is read back.</summary>
[Collection(ServerCollection.Name)]
public sealed class AuditTrailTests(ServerFixture server)
{
    private const string RiskInput = """{"name":"input","shape":[1,30],"datatype":"FP32","data":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}""";

    [Fact]
    public async Task A_rest_inference_is_recorded_with_its_actor_version_outcome_and_only_a_patient_pseudonym()
    {
        const string mrn = "MRN-00042-AUDIT";
        using var response = await server.PostJsonAsync("/v2/models/risk/infer",
            $$"""{"parameters":{"patient_id":"{{mrn}}"},"inputs":[{{RiskInput}}]}""");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var record = await RecordOf(response);
        Assert.Equal("key:admin", record.Actor);
        Assert.Equal("POST /v2/models/{model}/infer", record.Action);
        Assert.Equal("risk/1", record.Resource);
        Assert.Equal("200", record.Outcome);
        Assert.Equal("127.0.0.1", record.ClientAddress);
        Assert.Equal(server.Service<Pseudonymizer>().Pseudonym(mrn), record.PatientPseudonym);
        Assert.Equal(64, record.PatientPseudonym.Length);
        Assert.DoesNotContain(mrn, JsonSerializer.Serialize(record));
    }

    [Fact]
    public async Task The_patient_header_is_pseudonymized_the_same_way_and_failures_are_recorded_too()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v2/models/risk/versions/9/infer")
        {
            Content = new StringContent($$"""{"inputs":[{{RiskInput}}]}"""),
        };
        request.Headers.Add("X-Patient-Id", "MRN-00043-AUDIT");
        using var response = await server.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);

        var record = await RecordOf(response);
        Assert.Equal("404", record.Outcome);
        Assert.Equal("risk/9", record.Resource);
        Assert.Equal(server.Service<Pseudonymizer>().Pseudonym("MRN-00043-AUDIT"), record.PatientPseudonym);
    }

    [Fact]
    public async Task Refusals_are_recorded_and_reads_of_model_metadata_are_not()
    {
        using var anonymous = server.CreateClient(null);
        using var refused = await anonymous.GetAsync("/v2/models/risk");
        var record = await RecordOf(refused);
        Assert.Equal(("anonymous", "401", "GET /v2/models/{model}"), (record.Actor, record.Outcome, record.Action));

        using var read = await server.Client.GetAsync("/v2/models/risk");
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        Assert.Null(await Find(read));
    }

    [Fact]
    public async Task A_grpc_inference_is_recorded_before_its_answer_with_the_grpc_status()
    {
        var request = new MedServe.Grpc.Protocol.ModelInferRequest { ModelName = "risk" };
        var input = new MedServe.Grpc.Protocol.ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "FP32", Shape = { 1, 30 } };
        input.Contents = new MedServe.Grpc.Protocol.InferTensorContents();
        input.Contents.Fp32Contents.Add(new float[30]);
        request.Inputs.Add(input);
        request.Parameters["patient_id"] = new MedServe.Grpc.Protocol.InferParameter { StringParam = "MRN-00044-AUDIT" };
        using var call = server.Grpc.ModelInferAsync(request);
        await call.ResponseAsync;
        var requestId = (await call.ResponseHeadersAsync).GetValue("x-request-id")!;

        var record = Assert.Single(await Records(), r => r.Event.RequestId == requestId).Event;
        Assert.Equal(("POST /inference.GRPCInferenceService/ModelInfer", "risk/1", "OK"), (record.Action, record.Resource, record.Outcome));
        Assert.Equal(server.Service<Pseudonymizer>().Pseudonym("MRN-00044-AUDIT"), record.PatientPseudonym);

        var missing = await Assert.ThrowsAsync<global::Grpc.Core.RpcException>(() => server.Grpc.ModelInferAsync(new MedServe.Grpc.Protocol.ModelInferRequest { ModelName = "absent" }).ResponseAsync);
        Assert.Equal(global::Grpc.Core.StatusCode.NotFound, missing.StatusCode);
        var failed = Assert.Single(await Records(), r => r.Event.Resource == "absent");
        Assert.Equal("NotFound", failed.Event.Outcome);
    }

    [Fact]
    public async Task A_numeric_patient_id_is_its_decimal_text_over_rest_json_binary_and_grpc()
    {
        var expected = server.Service<Pseudonymizer>().Pseudonym("4455667799");

        using (var json = await server.PostJsonAsync("/v2/models/risk/infer", $$"""{"parameters":{"patient_id":4455667799},"inputs":[{{RiskInput}}]}"""))
        {
            Assert.Equal(HttpStatusCode.OK, json.StatusCode);
            Assert.Equal(expected, (await RecordOf(json)).PatientPseudonym);
        }

        using (var text = await server.PostJsonAsync("/v2/models/risk/infer", $$"""{"parameters":{"patient_id":"4455667799"},"inputs":[{{RiskInput}}]}"""))
        {
            Assert.Equal(expected, (await RecordOf(text)).PatientPseudonym);
        }

        // The binary extension: the parameters are in the JSON header part.
        var raw = new byte[30 * sizeof(float)];
        using (var binary = await server.PostBinaryAsync("/v2/models/risk/infer",
            $$$"""{"parameters":{"patient_id":4455667799},"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","parameters":{"binary_data_size":{{{raw.Length}}}}}]}""", raw))
        {
            Assert.Equal(HttpStatusCode.OK, binary.StatusCode);
            Assert.Equal(expected, (await RecordOf(binary)).PatientPseudonym);
        }

        foreach (var parameter in new[]
        {
            new MedServe.Grpc.Protocol.InferParameter { Int64Param = 4455667799 },
            new MedServe.Grpc.Protocol.InferParameter { Uint64Param = 4455667799 },
        })
        {
            using var call = server.Grpc.ModelInferAsync(GrpcRiskRequest(parameter));
            await call.ResponseAsync;
            var requestId = (await call.ResponseHeadersAsync).GetValue("x-request-id")!;
            Assert.Equal(expected, Assert.Single(await Records(), r => r.Event.RequestId == requestId).Event.PatientPseudonym);
        }
    }

    [Theory]
    [InlineData("true", "is a boolean")]
    [InlineData("4455667799.0", "is a floating-point number")]
    [InlineData("1e3", "is a floating-point number")]
    [InlineData("123456789012345678901234567890", "is a floating-point number (or an integer beyond 64 bits)")]
    [InlineData("\"\"", "is empty")]
    [InlineData("\"   \"", "is empty")]
    [InlineData("\" MRN-1\"", "leading or trailing whitespace")]
    [InlineData("\"MRN\\u0000-1\"", "control characters")]
    [InlineData("{\"id\":\"MRN-1\"}", "must be a string, number or boolean")]
    [InlineData("[\"MRN-1\"]", "must be a string, number or boolean")]
    public async Task A_patient_id_that_cannot_be_an_identifier_is_refused_not_dropped(string value, string message)
    {
        foreach (var binary in new[] { false, true })
        {
            var json = $$"""{"parameters":{"patient_id":{{value}}},"inputs":[{{RiskInput}}]}""";
            using var response = binary
                ? await server.PostBinaryAsync("/v2/models/risk/infer",
                    $$$"""{"parameters":{"patient_id":{{{value}}}},"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","parameters":{"binary_data_size":120}}]}""", new byte[120])
                : await server.PostJsonAsync("/v2/models/risk/infer", json);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            var error = (await ServerFixture.JsonAsync(response)).GetProperty("error").GetString()!;
            Assert.Contains(message, error);
            Assert.DoesNotContain("MRN", error);
            var record = await RecordOf(response);
            Assert.Equal(("400", ""), (record.Outcome, record.PatientPseudonym));
        }
    }

    [Fact]
    public async Task An_over_long_patient_id_is_refused_without_being_echoed()
    {
        var id = "MRN-" + new string('7', 200);
        using var response = await server.PostJsonAsync("/v2/models/risk/infer", $$"""{"parameters":{"patient_id":"{{id}}"},"inputs":[{{RiskInput}}]}""");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var error = (await ServerFixture.JsonAsync(response)).GetProperty("error").GetString()!;
        Assert.Equal("parameter 'patient_id' is 204 characters long; it must be a non-empty string of at most 128 characters or an integer", error);
    }

    [Fact]
    public async Task A_grpc_patient_id_that_cannot_be_an_identifier_is_invalid_argument()
    {
        foreach (var (parameter, message) in new[]
        {
            (new MedServe.Grpc.Protocol.InferParameter { BoolParam = true }, "is a boolean"),
            (new MedServe.Grpc.Protocol.InferParameter { DoubleParam = 4455667799 }, "is a floating-point number"),
            (new MedServe.Grpc.Protocol.InferParameter { StringParam = "" }, "is empty"),
            (new MedServe.Grpc.Protocol.InferParameter { StringParam = new string('7', 129) }, "is 129 characters long"),
            (new MedServe.Grpc.Protocol.InferParameter(), "has no value"),
            (new MedServe.Grpc.Protocol.InferParameter { Uint64Param = ulong.MaxValue }, "one out of range"),
        })
        {
            using var call = server.Grpc.ModelInferAsync(GrpcRiskRequest(parameter));
            var refused = await Assert.ThrowsAsync<global::Grpc.Core.RpcException>(() => call.ResponseAsync);
            Assert.Equal(global::Grpc.Core.StatusCode.InvalidArgument, refused.StatusCode);
            Assert.Contains(message, refused.Status.Detail);
            var requestId = (await call.ResponseHeadersAsync).GetValue("x-request-id")!;
            Assert.Equal("InvalidArgument", Assert.Single(await Records(), r => r.Event.RequestId == requestId).Event.Outcome);
        }
    }

    private static MedServe.Grpc.Protocol.ModelInferRequest GrpcRiskRequest(MedServe.Grpc.Protocol.InferParameter patient)
    {
        var request = new MedServe.Grpc.Protocol.ModelInferRequest { ModelName = "risk" };
        var input = new MedServe.Grpc.Protocol.ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "FP32", Shape = { 1, 30 } };
        input.Contents = new MedServe.Grpc.Protocol.InferTensorContents();
        input.Contents.Fp32Contents.Add(new float[30]);
        request.Inputs.Add(input);
        request.Parameters["patient_id"] = patient;
        return request;
    }

    [Theory]
    [InlineData("inference.GRPCInferenceService", "SystemSharedMemoryStatus", false)] // in the service, not offered
    [InlineData("inference.GRPCInferenceService", "ModelStreamInfer", true)] // a stream, not offered
    [InlineData("inference.GRPCInferenceService", "NoSuchMethod", false)] // not in the service
    [InlineData("no.such.Service", "Call", false)] // no such service
    public async Task An_unimplemented_grpc_call_is_recorded_with_its_grpc_status_not_200(string service, string method, bool streaming)
    {
        var bytes = global::Grpc.Core.Marshallers.Create<byte[]>(b => b, b => b);
        var invoker = server.GrpcChannel.CreateCallInvoker();
        string? requestId = null;
        var error = await Assert.ThrowsAsync<global::Grpc.Core.RpcException>(async () =>
        {
            if (streaming)
            {
                using var call = invoker.AsyncDuplexStreamingCall(new global::Grpc.Core.Method<byte[], byte[]>(global::Grpc.Core.MethodType.DuplexStreaming, service, method, bytes, bytes), null, default);
                await call.RequestStream.CompleteAsync();
                try
                {
                    while (await call.ResponseStream.MoveNext(CancellationToken.None))
                    {
                    }
                }
                finally
                {
                    requestId = (await call.ResponseHeadersAsync).GetValue("x-request-id");
                }
            }
            else
            {
                using var call = invoker.AsyncUnaryCall(new global::Grpc.Core.Method<byte[], byte[]>(global::Grpc.Core.MethodType.Unary, service, method, bytes, bytes), null, default, []);
                try
                {
                    await call.ResponseAsync;
                }
                finally
                {
                    requestId = (await call.ResponseHeadersAsync).GetValue("x-request-id");
                }
            }
        });
        Assert.Equal(global::Grpc.Core.StatusCode.Unimplemented, error.StatusCode);
        Assert.NotNull(requestId);

        var record = Assert.Single(await Records(), r => r.Event.RequestId == requestId).Event;
        Assert.Equal("Unimplemented", record.Outcome);
    }

    [Fact]
    public async Task Key_changes_are_recorded_by_key_name_and_the_trail_verifies_and_exports_as_fhir()
    {
        using (var created = await server.PostJsonAsync("/v1/keys", """{"name":"audited-key","scopes":["audit:read"]}"""))
        {
            var record = await RecordOf(created);
            Assert.Equal(("POST /v1/keys", "audited-key", "201"), (record.Action, record.Resource, record.Outcome));
        }

        var auditor = await server.CreateKeyAsync("auditor", "audit:read");
        using var client = server.CreateClient(auditor);
        var verdict = JsonDocument.Parse(await client.GetStringAsync("/v1/audit/verify")).RootElement;
        Assert.True(verdict.GetProperty("intact").GetBoolean());
        Assert.True(verdict.GetProperty("records").GetInt64() >= 3);

        using var export = await client.GetAsync("/v1/audit/events?from=2000-01-01T00:00:00Z");
        Assert.Equal("application/fhir+ndjson", export.Content.Headers.ContentType!.MediaType);
        var lines = (await export.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var events = lines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.All(events, e => Assert.Equal("AuditEvent", e.GetProperty("resourceType").GetString()));
        Assert.Contains(events, e => e.GetProperty("subtype")[0].GetProperty("code").GetString() == "POST /v1/keys");

        using var bad = await client.GetAsync("/v1/audit/events?from=yesterday");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        using var none = await client.GetAsync("/v1/audit/events?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z");
        Assert.Equal("", await none.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Loading_the_repository_at_start_is_recorded_as_the_systems_configuration_load()
    {
        // The start-up work (load, reconcile, records) is one background task: wait for it, not for a clock.
        var startup = server.Service<IEnumerable<Microsoft.Extensions.Hosting.IHostedService>>().OfType<Microsoft.Extensions.Hosting.BackgroundService>()
            .Single(s => s.GetType().Name == "ModelRepositoryService");
        await startup.ExecuteTask!.WaitAsync(TimeSpan.FromMinutes(1));

        var system = (await Records()).Where(r => r.Event.Actor == "system").Select(r => r.Event).ToList();
        Assert.Contains(system, e => (e.Action, e.Resource, e.Outcome) == ("startup load", "risk/1", "READY"));
        Assert.Equal(system.Count, system.Select(e => e.RequestId).Distinct().Count());
        Assert.Contains(system, e => e.Resource == "corrupt" && e.Outcome == "UNAVAILABLE");
    }

    private async Task<AuditEvent> RecordOf(HttpResponseMessage response) =>
        await Find(response) ?? throw new Xunit.Sdk.XunitException($"no audit record for request {string.Join(",", response.Headers.GetValues("X-Request-Id"))}");

    /// <summary>The record is durable before the answer leaves, so it is there the moment the answer arrives.</summary>
    private async Task<AuditEvent?> Find(HttpResponseMessage response)
    {
        var id = response.Headers.GetValues("X-Request-Id").Single();
        return (await Records()).SingleOrDefault(r => r.Event.RequestId == id)?.Event;
    }

    /// <summary>Refusals do not wait for their records: the journal is flushed first.</summary>
    private async Task<IReadOnlyList<AuditRecord>> Records()
    {
        var journal = server.Service<AuditJournal>();
        await journal.Writer!.FlushAsync();
        return journal.ReadRange(DateTimeOffset.MinValue, DateTimeOffset.MaxValue);
    }
}
