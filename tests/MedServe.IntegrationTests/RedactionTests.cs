using MedServe.Compliance.Journal;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Google.Protobuf;
using Grpc.Core;
using MedServe.Grpc.Protocol;
using MedServe.IntegrationTests.Support;
using MedServe.Samples;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace MedServe.IntegrationTests;

/// <summary>
/// No patient data in logs or metrics: canary values (a fake MRN, a name, distinctive numbers and
/// free text) go through every kind of endpoint, valid and invalid, over REST and gRPC, while a
/// log sink records everything at Trace level (messages, exceptions, scopes). None of it may
/// reach that sink, the /metrics text, or the audit database (which keeps only a pseudonym).
/// </summary>
public sealed class RedactionTests : IAsyncLifetime
{
    private const string Mrn = "MRN-CANARY-48213977";
    private const string Name = "Zebulon Canaryfield";
    private const string FreeText = "patient reports canary-chest-pain";
    private const float Measurement = 48213.977f;
    private const float Count = 7712309f; // exactly representable in FP32
    private const string ProbeCategory = "MedServe.IntegrationTests.RedactionProbe";

    /// <summary>What the scan looks for (case-insensitive): each canary, and the parts a formatter might split out.</summary>
    private static readonly string[] Canaries = [Mrn, "48213977", Name, "Zebulon", "Canaryfield", FreeText, "canary-chest-pain", "48213.97", "7712309"];

    private readonly CapturingLoggerProvider _capture = new();
    private RunningServer _server = null!;
    private HttpClient _admin = null!;

    private string Root => _server.Root;

    public async Task InitializeAsync()
    {
        _server = await RunningServer.StartAsync(
            new Dictionary<string, string?>
            {
                ["Logging:LogLevel:Default"] = "Trace",
                ["Logging:LogLevel:Microsoft"] = "Trace",
                ["Logging:LogLevel:Microsoft.AspNetCore"] = "Trace", // appsettings.json holds it to Warning otherwise
                ["Logging:LogLevel:Grpc"] = "Trace",
                ["MedServe:Registry:AllowedSourceDirectories:0"] = ServerFixture.SamplesFolder,
            },
            builder =>
            {
                // Only the capture: the console at Trace would flood the test output. Redaction wraps it all the same.
                builder.Logging.ClearProviders();
                builder.Logging.AddProvider(_capture);
            },
            repository =>
            {
                SampleModels.ProvisionRisk(repository);
                IdentityModel.WriteAll(repository);
            });
        _admin = _server.Client(_server.AdminKey);
    }

    public async Task DisposeAsync()
    {
        _admin?.Dispose();
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    [Fact]
    public async Task Canaries_sent_through_every_endpoint_reach_no_log_metric_or_audit_record()
    {
        // The sink works and the scan would see a canary: a probe through the app's own logger factory.
        var probe = _server.Services.GetRequiredService<ILoggerFactory>().CreateLogger(ProbeCategory);
        probe.LogInformation("GET /x?patient=" + Mrn);
        probe.LogInformation("probe {Who}", Name);
        var probes = _capture.Entries.Where(e => e.Category == ProbeCategory).ToList();
        Assert.Equal(2, probes.Count);
        Assert.Equal("GET /x?[redacted]", probes[0].Message);
        Assert.Empty(Leaks(probes.Take(1)));
        Assert.Equal([Name, "Zebulon", "Canaryfield"], Leaks(probes.Skip(1)).Where(l => l.Part == "message").Select(l => l.Canary));

        await RestInferenceAsync();
        await MalformedInferenceAsync();
        await QueryStringsAndPathSegmentsAsync();
        await RepositoryAsync();
        await RegistryAsync();
        await MlflowAsync();
        await KeysAsync();
        await CredentialsAsync();
        await GrpcAsync();

        using var metricsResponse = await _admin.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, metricsResponse.StatusCode);
        var metrics = await metricsResponse.Content.ReadAsStringAsync();
        Assert.Contains("nv_inference_request_success{model=\"id-bytes\"", metrics);

        var audit = await ReadAuditAsync();

        // The capture saw request handling at Trace/Debug, so the scan below has something to scan.
        var entries = _capture.Entries.Where(e => e.Category != ProbeCategory).ToList();
        Assert.True(entries.Count >= 50, $"only {entries.Count} log entries captured");
        Assert.Contains(entries, e => e.Category.StartsWith("Microsoft.AspNetCore", StringComparison.Ordinal) && e.Level <= LogLevel.Debug);
        Assert.Contains(entries, e => e.Scopes.Count > 0);

        // The audit trail keeps a pseudonym for the patient: one MRN, one pseudonym, from REST and gRPC alike.
        var pseudonym = Assert.Single(audit.Patients.Where(p => p.Length > 0).Distinct());
        Assert.Matches("^[0-9a-f]{64}$", pseudonym);
        Assert.Contains(audit.Rows, r => r.StartsWith("POST /v2/models/{model}/infer risk/1 200 " + pseudonym, StringComparison.Ordinal));
        Assert.Contains(audit.Rows, r => r.StartsWith("POST /inference.GRPCInferenceService/ModelInfer id-bytes/1 OK " + pseudonym, StringComparison.Ordinal));

        // Every leak at once, wherever it is.
        var failures = Summarize(Leaks(entries)).Select(l => "log " + l).ToList();
        failures.AddRange(Canaries.Where(c => metrics.Contains(c, StringComparison.OrdinalIgnoreCase)).Select(c => $"/metrics holds '{c}'"));
        // The audit trail is not a log sink: it names the resource a client addressed (a URL's model, a
        // gRPC model_name) as given, so a canary typed into a path shows there. Every other field,
        // the patient above all, must be free of canaries.
        failures.AddRange(audit.Fields.Where(r => Canaries.Any(c => r.Contains(c, StringComparison.OrdinalIgnoreCase))).Select(r => "audit record: " + r));
        Assert.True(failures.Count == 0, $"canaries leaked in {failures.Count} places:\n" + string.Join("\n", failures.Take(80)));
    }

    private async Task RestInferenceAsync()
    {
        // JSON, FP32 values carrying the numbers, the MRN as the patient_id parameter and as the request id.
        var row = Row();
        using (var response = await Send(HttpMethod.Post, "/v2/models/risk/infer",
            $$"""{"id":"{{Mrn}}","parameters":{"patient_id":"{{Mrn}}","note":"{{FreeText}}"},"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[{{row}}]}]}""",
            ("X-Patient-Id", Mrn), ("X-Clinical-Note", FreeText)))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // BYTES strings: the name, the MRN, the free text; patient id only as the header.
        using (var response = await Send(HttpMethod.Post, "/v2/models/id-bytes/infer",
            $$"""{"inputs":[{"name":"in","shape":[1,3],"datatype":"BYTES","data":["{{Name}}","{{Mrn}}","{{FreeText}}"]}],"outputs":[{"name":"out"}]}""",
            ("X-Patient-Id", Mrn)))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Contains(Name, await response.Content.ReadAsStringAsync());
        }

        using (var response = await Send(HttpMethod.Post, "/v2/models/id-fp32/infer",
            $$$"""{"inputs":[{"name":"in","shape":[1,3],"datatype":"FP32","data":[{{{F(Measurement)}}},{{{F(Count)}}},1]}],"parameters":{"patient_id":"{{{Mrn}}}"}}"""))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // Binary extension: FP32 raw, and length-prefixed BYTES with binary output asked for.
        var values = Enumerable.Repeat(Measurement, 15).Concat(Enumerable.Repeat(Count, 15)).ToArray();
        var raw = MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
        using (var response = await SendBinary("/v2/models/risk/infer",
            $$$"""{"id":"{{{Mrn}}}","parameters":{"patient_id":"{{{Mrn}}}"},"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","parameters":{"binary_data_size":{{{raw.Length}}}}}],"outputs":[{"name":"output","parameters":{"binary_data":true}}]}""",
            raw))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        var strings = Prefixed(Name, Mrn, FreeText);
        using (var response = await SendBinary("/v2/models/id-bytes/infer",
            $$$"""{"parameters":{"patient_id":"{{{Mrn}}}","binary_data_output":true},"inputs":[{"name":"in","shape":[1,3],"datatype":"BYTES","parameters":{"binary_data_size":{{{strings.Length}}}}}]}""",
            strings, ("X-Patient-Id", Mrn)))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // Gzip-encoded JSON with the canaries.
        using (var compressed = new MemoryStream())
        {
            using (var gzip = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
            {
                gzip.Write(Encoding.UTF8.GetBytes($$$"""{"inputs":[{"name":"in","shape":[1,3],"datatype":"BYTES","data":["{{{Name}}}","{{{Mrn}}}","{{{FreeText}}}"]}],"parameters":{"patient_id":"{{{Mrn}}}"}}"""));
            }

            using var request = new HttpRequestMessage(HttpMethod.Post, "/v2/models/id-bytes/versions/1/infer") { Content = new ByteArrayContent(compressed.ToArray()) };
            request.Content.Headers.ContentEncoding.Add("gzip");
            using var response = await _admin.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }

    private async Task MalformedInferenceAsync()
    {
        var row = Row();
        string[] bodies =
        [
            // A string canary where FP32 numbers belong.
            $$$"""{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":["{{{Mrn}}}",{{{row[(row.IndexOf(',') + 1)..]}}}]}],"parameters":{"patient_id":"{{{Mrn}}}"}}""",
            // Invalid JSON around canary text.
            $$"""{"inputs":[{"name":"{{Name}}","data":[{{FreeText}} {{Mrn}} {{F(Measurement)}}""",
            $$"""{"parameters":{"patient_id":"{{Mrn}}"},"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[{{row}},]}]}""",
            // Shape mismatch with the numbers.
            $$$"""{"inputs":[{"name":"input","shape":[1,29],"datatype":"FP32","data":[{{{row}}}]}],"parameters":{"patient_id":"{{{Mrn}}}"}}""",
            // Canaries where names and datatypes belong.
            $$"""{"inputs":[{"name":"{{Mrn}}","shape":[1,30],"datatype":"FP32","data":[{{row}}]}]}""",
            $$"""{"inputs":[{"name":"input","shape":[1,30],"datatype":"{{FreeText}}","data":[{{row}}]}]}""",
            $$"""{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[{{row}}]}],"outputs":[{"name":"{{Name}}"}]}""",
            $$"""{"inputs":[{"name":"input","shape":[1,30],"datatype":"INT32","data":[{{row}}]}]}""",
            $$"""{"inputs":[{"name":"input","shape":["{{Mrn}}",30],"datatype":"FP32","data":[{{row}}]}]}""",
            $$$"""{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[{{{row}}}]}],"parameters":{"patient_id":{"{{{Name}}}":{{{F(Count)}}}},"priority":"{{{FreeText}}}","timeout":"{{{Mrn}}}"}}""",
            $$"""["{{Mrn}}","{{Name}}","{{FreeText}}"]""",
        ];
        foreach (var body in bodies)
        {
            using var response = await Send(HttpMethod.Post, "/v2/models/risk/infer", body, ("X-Patient-Id", Mrn));
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }

        // BYTES where the model wants FP32, with the name in the value; FP32 canaries for a BYTES model.
        using (var response = await Send(HttpMethod.Post, "/v2/models/id-fp32/infer",
            $$"""{"inputs":[{"name":"in","shape":[1,3],"datatype":"BYTES","data":["{{Name}}","{{Mrn}}","{{FreeText}}"]}]}"""))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }

        using (var response = await Send(HttpMethod.Post, "/v2/models/id-bytes/infer",
            $$"""{"inputs":[{"name":"in","shape":[1,3],"datatype":"BYTES","data":[{{F(Measurement)}},"{{Mrn}}",{{F(Count)}}]}]}"""))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }

        // Binary bodies that do not add up, and a header length that is a canary.
        var strings = Prefixed(Name, Mrn, FreeText);
        using (var response = await SendBinary("/v2/models/id-bytes/infer",
            $$$"""{"inputs":[{"name":"in","shape":[1,3],"datatype":"BYTES","parameters":{"binary_data_size":{{{strings.Length + 7}}}}}]}""", strings))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }

        using (var response = await SendBinary("/v2/models/id-bytes/infer",
            $$$"""{"inputs":[{"name":"in","shape":[1,2],"datatype":"BYTES","parameters":{"binary_data_size":{{{strings.Length}}}}}]}""", strings))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }

        using (var request = new HttpRequestMessage(HttpMethod.Post, "/v2/models/id-bytes/infer"))
        {
            request.Content = new ByteArrayContent(Encoding.UTF8.GetBytes($$"""{"inputs":[{"name":"in","shape":[1,3],"datatype":"BYTES","data":["{{Name}}","{{Mrn}}","{{FreeText}}"]}]}"""));
            request.Content.Headers.TryAddWithoutValidation("Inference-Header-Content-Length", Mrn);
            using var response = await _admin.SendAsync(request);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }

        // A body the server cannot decompress, and a wrong content type, each with canary text.
        using (var request = new HttpRequestMessage(HttpMethod.Post, "/v2/models/risk/infer"))
        {
            request.Content = new ByteArrayContent(Encoding.UTF8.GetBytes(FreeText + " " + Mrn));
            request.Content.Headers.ContentEncoding.Add("gzip");
            using var response = await _admin.SendAsync(request);
            Assert.True((int)response.StatusCode is >= 400 and < 500, response.StatusCode.ToString());
        }

        using (var request = new HttpRequestMessage(HttpMethod.Post, "/v2/models/risk/infer"))
        {
            request.Content = new StringContent($"patient={Uri.EscapeDataString(Mrn)}&name={Uri.EscapeDataString(Name)}", Encoding.UTF8, "application/x-www-form-urlencoded");
            using var response = await _admin.SendAsync(request);
            Assert.True((int)response.StatusCode is >= 400 and < 500, response.StatusCode.ToString());
        }

        // Infer with the wrong method.
        using (var response = await Send(HttpMethod.Put, "/v2/models/risk/infer", $$"""{"patient":"{{Mrn}}"}"""))
        {
            Assert.True((int)response.StatusCode is >= 400 and < 500, response.StatusCode.ToString());
        }
    }

    private async Task QueryStringsAndPathSegmentsAsync()
    {
        var query = $"?patient_id={Uri.EscapeDataString(Mrn)}&name={Uri.EscapeDataString(Name)}&note={Uri.EscapeDataString(FreeText)}&v={F(Measurement)}";
        string[] gets =
        [
            "/v2/health/live", "/v2/health/ready", "/v2", "/v2/models/risk", "/v2/models/risk/ready", "/v2/models/risk/config",
            "/v2/models/risk/versions/1", "/v2/models/stats", "/v2/models/risk/stats", "/metrics", "/v1/registry/models", "/v1/keys",
            "/v1/audit/verify", "/v1/audit/events", "/api/2.0/mlflow/registered-models/search", "/nowhere",
        ];
        foreach (var path in gets)
        {
            using var response = await _admin.GetAsync(path + query);
            Assert.True((int)response.StatusCode < 500, $"{path}: {response.StatusCode}");
        }

        // Query values that are read: a search, a lookup by name, a filter, a time range.
        string[] reads =
        [
            "/v1/registry/models?q=" + Uri.EscapeDataString(Mrn),
            "/api/2.0/mlflow/registered-models/get?name=" + Uri.EscapeDataString(Mrn),
            "/api/2.0/mlflow/model-versions/get?name=" + Uri.EscapeDataString(Name) + "&version=" + Uri.EscapeDataString(FreeText),
            "/api/2.0/mlflow/registered-models/search?filter=" + Uri.EscapeDataString($"name LIKE '{Mrn}%' AND tag.note = '{FreeText}'"),
            "/api/2.0/mlflow/model-versions/search?filter=" + Uri.EscapeDataString($"name='{Name}'"),
            "/api/2.0/mlflow/registered-models/alias?name=" + Uri.EscapeDataString(Mrn) + "&alias=" + Uri.EscapeDataString(Name),
            "/api/2.0/mlflow/model-versions/get-download-uri?name=" + Uri.EscapeDataString(Mrn) + "&version=1",
            "/v1/audit/events?from=" + Uri.EscapeDataString(Mrn) + "&to=" + Uri.EscapeDataString(FreeText),
        ];
        foreach (var path in reads)
        {
            using var response = await _admin.GetAsync(path);
            Assert.True((int)response.StatusCode < 500, $"{path}: {response.StatusCode}");
        }

        // The MRN as a path segment where a model, version, key or alias name belongs: 404s and 400s.
        var mrn = Uri.EscapeDataString(Mrn);
        (HttpMethod Method, string Path)[] paths =
        [
            (HttpMethod.Post, $"/v2/models/{mrn}/infer"), (HttpMethod.Post, $"/v2/models/risk/versions/{mrn}/infer"),
            (HttpMethod.Get, $"/v2/models/{mrn}"), (HttpMethod.Get, $"/v2/models/{mrn}/ready"), (HttpMethod.Get, $"/v2/models/{mrn}/stats"),
            (HttpMethod.Get, $"/v2/models/risk/versions/{mrn}/stats"), (HttpMethod.Post, $"/v2/repository/models/{mrn}/load"),
            (HttpMethod.Post, $"/v2/repository/models/{mrn}/unload"), (HttpMethod.Get, $"/v1/registry/models/{mrn}"),
            (HttpMethod.Get, $"/v1/registry/models/{mrn}/aliases/history"), (HttpMethod.Delete, $"/v1/keys/{mrn}"),
            (HttpMethod.Post, $"/v1/keys/{mrn}/expire"), (HttpMethod.Get, $"/{mrn}/{Uri.EscapeDataString(Name)}"),
        ];
        foreach (var (method, path) in paths)
        {
            using var response = await Send(method, path, $$"""{"inputs":[{"name":"in","shape":[1,3],"datatype":"BYTES","data":["{{Name}}","{{Mrn}}","{{FreeText}}"]}]}""", ("X-Patient-Id", Mrn));
            Assert.True((int)response.StatusCode < 500, $"{method} {path}: {response.StatusCode}");
        }
    }

    private async Task RepositoryAsync()
    {
        // A config override carrying free text, an unknown parameter named by it, a body that is not JSON.
        var config = JsonSerializer.Serialize(new { name = "id-int8", max_batch_size = 4, parameters = new { note = new { string_value = FreeText }, intra_op_thread_count = new { string_value = Name } } });
        using (var response = await Send(HttpMethod.Post, "/v2/repository/models/id-int8/load", JsonSerializer.Serialize(new { parameters = new { config } })))
        {
            Assert.True((int)response.StatusCode < 500, response.StatusCode.ToString());
        }

        using (var response = await Send(HttpMethod.Post, "/v2/repository/models/id-int8/load",
            JsonSerializer.Serialize(new { parameters = new { config = $"{{\"name\":\"{Mrn}\",\"max_batch_size\":\"{FreeText}\"}}" } })))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }

        using (var response = await Send(HttpMethod.Post, "/v2/repository/models/id-int8/load", $$$"""{"parameters":{"{{{Mrn}}}":"{{{Name}}}"}}"""))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }

        using (var response = await Send(HttpMethod.Post, "/v2/repository/index", $$"""{"ready":"{{FreeText}}"}"""))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }

        using (var response = await Send(HttpMethod.Post, "/v2/repository/models/id-int8/unload", FreeText))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }
    }

    private async Task RegistryAsync()
    {
        using (var response = await Send(HttpMethod.Post, "/v1/registry/models", JsonSerializer.Serialize(new { name = "canary-reg", description = $"{FreeText}; seen by {Name}, {Mrn}" })))
        {
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }

        var card = JsonSerializer.Serialize(new { intended_use = FreeText, contact = Name, example_patient = Mrn, example_value = Measurement });
        using (var response = await RegisterVersion("canary-reg", $$$"""{"version":"1.0.0","registered_by":"{{{Name}}}","model_card":{{{card}}},"lineage":{"training_data":"{{{Mrn}}}"}}"""))
        {
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }

        using (var response = await RegisterVersion("canary-reg", """{"version":"1.0.1"}"""))
        {
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }

        (HttpMethod Method, string Path, string Body, HttpStatusCode Status)[] calls =
        [
            (HttpMethod.Put, "/v1/registry/models/canary-reg/tags/note", JsonSerializer.Serialize(new { value = FreeText }), HttpStatusCode.OK),
            (HttpMethod.Put, "/v1/registry/models/canary-reg/versions/1/tags/reviewer", JsonSerializer.Serialize(new { value = Name }), HttpStatusCode.OK),
            (HttpMethod.Put, "/v1/registry/models/canary-reg/aliases/champion", JsonSerializer.Serialize(new { version = 1, reason = FreeText, changed_by = Name }), HttpStatusCode.OK),
            (HttpMethod.Put, "/v1/registry/models/canary-reg/aliases/champion", JsonSerializer.Serialize(new { version = 2, reason = $"retrained after {Mrn}", changed_by = Name }), HttpStatusCode.OK),
            (HttpMethod.Post, "/v1/registry/models/canary-reg/rollback", JsonSerializer.Serialize(new { reason = FreeText, changed_by = Name }), HttpStatusCode.OK),
            (HttpMethod.Put, "/v1/registry/models/canary-reg/aliases/champion", JsonSerializer.Serialize(new { version = 9, reason = FreeText, changed_by = Name }), HttpStatusCode.NotFound),
            (HttpMethod.Put, "/v1/registry/models/canary-reg/aliases/champion", $$"""{"version":"{{Mrn}}","reason":"{{FreeText}}"}""", HttpStatusCode.BadRequest),
            (HttpMethod.Post, "/v1/registry/models", $$"""{"name":"canary-reg","description":"{{FreeText}}"}""", HttpStatusCode.Conflict),
            (HttpMethod.Post, "/v1/registry/models", $$"""{"name":{"{{Name}}":1},"description":"{{FreeText}}"}""", HttpStatusCode.BadRequest),
            (HttpMethod.Post, "/v1/registry/models", $$"""{"name":"x","description":"{{FreeText}} {{Mrn}}""", HttpStatusCode.BadRequest),
        ];
        foreach (var (method, path, body, status) in calls)
        {
            using var response = await Send(method, path, body);
            Assert.True(response.StatusCode == status, $"{method} {path}: {response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }

        using (var response = await RegisterVersion("canary-reg", $$$"""{"version":"{{{Mrn}}}","registered_by":"{{{Name}}}","model_card":{"intended_use":"{{{FreeText}}}"}}"""))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }

        using (var response = await RegisterVersion("canary-reg", $$"""{"version":"2.0.0","model_card":{{FreeText}}"""))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        }

        using (var response = await _admin.GetAsync("/v1/registry/models/canary-reg"))
        {
            Assert.Contains(FreeText, await response.Content.ReadAsStringAsync());
        }

        // Inference through the registry-served model, with the canaries.
        using (var response = await Send(HttpMethod.Post, "/v2/models/canary-reg/infer",
            $$"""{"parameters":{"patient_id":"{{Mrn}}"},"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[{{Row()}}]}]}"""))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }

    private async Task MlflowAsync()
    {
        (HttpMethod Method, string Path, string Body, bool Ok)[] calls =
        [
            (HttpMethod.Post, "registered-models/create", JsonSerializer.Serialize(new { name = "canary-mlflow", description = FreeText, tags = new[] { new { key = "patient", value = Mrn }, new { key = "clinician", value = Name } } }), true),
            (HttpMethod.Patch, "registered-models/update", JsonSerializer.Serialize(new { name = "canary-mlflow", description = $"{FreeText} ({Name}, {Mrn})" }), true),
            (HttpMethod.Post, "registered-models/set-tag", JsonSerializer.Serialize(new { name = "canary-mlflow", key = "note", value = FreeText }), true),
            (HttpMethod.Post, "model-versions/create", JsonSerializer.Serialize(new { name = "canary-mlflow", source = RiskFile, run_id = Mrn, description = FreeText, tags = new[] { new { key = "patient", value = Mrn } } }), true),
            (HttpMethod.Patch, "model-versions/update", JsonSerializer.Serialize(new { name = "canary-mlflow", version = "1", description = $"{FreeText} by {Name}" }), true),
            (HttpMethod.Post, "model-versions/set-tag", JsonSerializer.Serialize(new { name = "canary-mlflow", version = "1", key = "reviewer", value = Name }), true),
            (HttpMethod.Post, "registered-models/alias", JsonSerializer.Serialize(new { name = "canary-mlflow", alias = "champion", version = "1" }), true),
            (HttpMethod.Post, "registered-models/create", JsonSerializer.Serialize(new { name = "canary-mlflow", description = FreeText }), false),
            (HttpMethod.Patch, "registered-models/update", JsonSerializer.Serialize(new { name = Mrn, description = FreeText }), false),
            (HttpMethod.Post, "model-versions/create", JsonSerializer.Serialize(new { name = Mrn, source = RiskFile, description = FreeText }), false),
            (HttpMethod.Patch, "model-versions/update", JsonSerializer.Serialize(new { name = "canary-mlflow", version = Mrn, description = FreeText }), false),
            (HttpMethod.Post, "model-versions/transition-stage", JsonSerializer.Serialize(new { name = "canary-mlflow", version = "1", stage = FreeText }), false),
            (HttpMethod.Post, "registered-models/alias", JsonSerializer.Serialize(new { name = "canary-mlflow", alias = Name, version = Mrn }), false),
            (HttpMethod.Post, "registered-models/rename", JsonSerializer.Serialize(new { name = Mrn, new_name = Name }), false),
            (HttpMethod.Post, "registered-models/create", $$"""{"name":"canary-bad","description":"{{FreeText}}",""", false),
        ];
        foreach (var (method, path, body, ok) in calls)
        {
            using var response = await Send(method, "/api/2.0/mlflow/" + path, body);
            var status = (int)response.StatusCode;
            Assert.True(ok ? status == 200 : status is >= 400 and < 500, $"{method} {path}: {response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }
    }

    private async Task KeysAsync()
    {
        // A narrow key for the 403 below: its name and scopes carry no canary.
        string narrow;
        using (var response = await Send(HttpMethod.Post, "/v1/keys", """{"name":"redaction-reader","scopes":["models:read"]}"""))
        {
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            narrow = (await ServerFixture.JsonAsync(response)).GetProperty("key").GetString()!;
        }

        string[] failing =
        [
            $$"""{"name":"redaction-bad-1","scopes":["{{Mrn}}","{{FreeText}}"]}""",
            $$"""{"name":"redaction-bad-2","scopes":["infer"],"expires_in_days":"{{FreeText}}"}""",
            $$"""{"name":"redaction-bad-3","scopes":["infer"],"requests_per_second":"{{Name}}"}""",
            $$"""{"name":"redaction-bad-4","scopes":"{{Mrn}}"}""",
            $$"""{"name":"redaction-bad-5","scopes":["infer"],"note":"{{FreeText}}" """,
            """{"name":"redaction-reader","scopes":["infer"]}""",
        ];
        foreach (var body in failing)
        {
            using var response = await Send(HttpMethod.Post, "/v1/keys", body);
            Assert.True((int)response.StatusCode is 400 or 409, $"{body}: {response.StatusCode}");
        }

        using (var reader = _server.Client(narrow))
        using (var response = await Send(HttpMethod.Post, "/v2/models/id-bytes/infer",
            $$"""{"parameters":{"patient_id":"{{Mrn}}"},"inputs":[{"name":"in","shape":[1,3],"datatype":"BYTES","data":["{{Name}}","{{Mrn}}","{{FreeText}}"]}]}""",
            [("X-Patient-Id", Mrn)], reader))
        {
            Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        }
    }

    private async Task CredentialsAsync()
    {
        var body = $$"""{"parameters":{"patient_id":"{{Mrn}}"},"inputs":[{"name":"in","shape":[1,3],"datatype":"BYTES","data":["{{Name}}","{{Mrn}}","{{FreeText}}"]}]}""";
        string?[] credentials = [null, "Bearer " + Mrn, "Bearer ms_" + Mrn, "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(Name + ":" + FreeText)), Name];
        foreach (var credential in credentials)
        {
            using var client = _server.Client(null);
            using var request = new HttpRequestMessage(HttpMethod.Post, $"/v2/models/id-bytes/infer?patient={Uri.EscapeDataString(Mrn)}")
            {
                Content = new StringContent(body, Encoding.UTF8, "application/json"),
            };
            if (credential is not null)
            {
                request.Headers.TryAddWithoutValidation("Authorization", credential);
            }

            request.Headers.TryAddWithoutValidation("X-Patient-Id", Mrn);
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }

        using (var anonymous = _server.Client(null))
        using (var response = await anonymous.GetAsync("/v1/registry/models?q=" + Uri.EscapeDataString(Mrn)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }
    }

    private async Task GrpcAsync()
    {
        using var channel = _server.GrpcChannel(_server.AdminKey);
        var grpc = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        var patient = new Metadata { { "x-patient-id", Mrn }, { "x-clinical-note", FreeText } };

        // Typed FP32 contents with the numbers, the patient as a parameter and as metadata.
        var risk = new ModelInferRequest { ModelName = "risk", Id = Mrn };
        risk.Parameters["patient_id"] = new InferParameter { StringParam = Mrn };
        risk.Parameters["note"] = new InferParameter { StringParam = FreeText };
        risk.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "FP32", Shape = { 1, 30 }, Contents = new InferTensorContents { Fp32Contents = { Values() } } });
        Assert.Equal("risk", (await grpc.ModelInferAsync(risk, patient)).ModelName);

        // BYTES contents, and raw contents with the same strings.
        var bytes = new ModelInferRequest { ModelName = "id-bytes", Id = Name };
        bytes.Parameters["patient_id"] = new InferParameter { StringParam = Mrn };
        bytes.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "in", Datatype = "BYTES", Shape = { 1, 3 }, Contents = new InferTensorContents { BytesContents = { Utf8(Name), Utf8(Mrn), Utf8(FreeText) } } });
        await grpc.ModelInferAsync(bytes, patient);

        var raw = new ModelInferRequest { ModelName = "id-bytes" };
        raw.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "in", Datatype = "BYTES", Shape = { 1, 3 } });
        raw.RawInputContents.Add(ByteString.CopyFrom(Prefixed(Name, Mrn, FreeText)));
        await grpc.ModelInferAsync(raw, patient);

        // Invalid: strings for an FP32 model, a count mismatch, an unknown model and input named by canaries.
        var wrongType = new ModelInferRequest { ModelName = "risk" };
        wrongType.Parameters["patient_id"] = new InferParameter { StringParam = Mrn };
        wrongType.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "BYTES", Shape = { 1, 3 }, Contents = new InferTensorContents { BytesContents = { Utf8(Name), Utf8(Mrn), Utf8(FreeText) } } });
        var mismatch = new ModelInferRequest { ModelName = "id-fp32" };
        mismatch.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "in", Datatype = "FP32", Shape = { 1, 3 }, Contents = new InferTensorContents { Fp32Contents = { Measurement, Count } } });
        var unknownModel = new ModelInferRequest { ModelName = Mrn };
        unknownModel.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = Name, Datatype = "BYTES", Shape = { 1 }, Contents = new InferTensorContents { BytesContents = { Utf8(FreeText) } } });
        var unknownInput = new ModelInferRequest { ModelName = "id-bytes" };
        unknownInput.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = Name, Datatype = FreeText, Shape = { 1, 3 }, Contents = new InferTensorContents { BytesContents = { Utf8(Mrn) } } });
        var badRaw = new ModelInferRequest { ModelName = "id-bytes" };
        badRaw.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "in", Datatype = "BYTES", Shape = { 1, 3 } });
        badRaw.RawInputContents.Add(ByteString.CopyFrom(Prefixed(Name, Mrn)));
        foreach (var request in new[] { wrongType, mismatch, unknownModel, unknownInput, badRaw })
        {
            var error = await Assert.ThrowsAsync<RpcException>(async () => await grpc.ModelInferAsync(request, patient));
            Assert.NotEqual(StatusCode.Internal, error.StatusCode);
            Assert.NotEqual(StatusCode.Unknown, error.StatusCode);
        }

        await Assert.ThrowsAsync<RpcException>(async () => await grpc.ModelMetadataAsync(new ModelMetadataRequest { Name = Mrn }, patient));
        await Assert.ThrowsAsync<RpcException>(async () => await grpc.ModelReadyAsync(new ModelReadyRequest { Name = Mrn, Version = Name }, patient));
        await Assert.ThrowsAsync<RpcException>(async () => await grpc.ModelConfigAsync(new ModelConfigRequest { Name = Name }, patient));
        await Assert.ThrowsAsync<RpcException>(async () => await grpc.ModelStatisticsAsync(new ModelStatisticsRequest { Name = Mrn }, patient));
        await Assert.ThrowsAsync<RpcException>(async () => await grpc.RepositoryModelLoadAsync(new RepositoryModelLoadRequest { ModelName = Mrn }, patient));
        await Assert.ThrowsAsync<RpcException>(async () => await grpc.RepositoryModelLoadAsync(new RepositoryModelLoadRequest
        {
            ModelName = "id-int8",
            Parameters = { ["config"] = new ModelRepositoryParameter { StringParam = $"{{\"name\":\"id-int8\",\"max_batch_size\":\"{FreeText}\"}}" } },
        }, patient));

        // No credential, and a credential that is a canary.
        foreach (var credential in new string?[] { null, Mrn, "ms_" + Name.Replace(' ', '_') })
        {
            using var refusedChannel = _server.GrpcChannel(credential);
            var refused = new GRPCInferenceService.GRPCInferenceServiceClient(refusedChannel);
            var error = await Assert.ThrowsAsync<RpcException>(async () => await refused.ModelInferAsync(bytes, patient));
            Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        }
    }

    private async Task<(List<string> Fields, List<string> Patients, List<string> Rows)> ReadAuditAsync()
    {
        // Refusals do not wait for their records: wait for the journal instead.
        var journal = _server.Services.GetRequiredService<AuditJournal>();
        await journal.Writer!.FlushAsync();
        var fields = new List<string>();
        var patients = new List<string>();
        var rows = new List<string>();
        foreach (var record in journal.ReadRange(DateTimeOffset.MinValue, DateTimeOffset.MaxValue))
        {
            var e = record.Event;
            patients.Add(e.PatientPseudonym);
            fields.Add($"{e.Action} | {e.Outcome} | {e.PatientPseudonym} | {e.Actor} | {e.RequestId} | {e.ClientAddress}");
            rows.Add($"{e.Action} {e.Resource} {e.Outcome} {e.PatientPseudonym}");
        }

        Assert.True(rows.Count > 20, $"only {rows.Count} audit records");
        return (fields, patients, rows);
    }

    /// <summary>Every canary in every part of every entry, with the text around it.</summary>
    private static IEnumerable<(CapturedLog Entry, string Canary, string Part, string Snippet)> Leaks(IEnumerable<CapturedLog> entries) =>
        from entry in entries
        from part in new[] { ("message", entry.Message), ("exception", entry.Exception ?? ""), ("state", entry.State) }.Concat(entry.Scopes.Select(s => ("scope", s)))
        from canary in Canaries
        let at = part.Item2.IndexOf(canary, StringComparison.OrdinalIgnoreCase)
        where at >= 0
        select (entry, canary, part.Item1, part.Item2[Math.Max(0, at - 60)..Math.Min(part.Item2.Length, at + canary.Length + 20)]);

    /// <summary>One line per distinct leak: where it was, the text around it, how often, and in which categories.</summary>
    private static List<string> Summarize(IEnumerable<(CapturedLog Entry, string Canary, string Part, string Snippet)> leaks) =>
        leaks.Where(l => !Canaries.Any(c => c.Length > l.Canary.Length && c.Contains(l.Canary, StringComparison.OrdinalIgnoreCase) && l.Snippet.Contains(c, StringComparison.OrdinalIgnoreCase)))
            .GroupBy(l => (l.Part, l.Snippet))
            .Select(g => $"{g.Key.Part} (x{g.Count()}; {string.Join(", ", g.Select(l => $"{l.Entry.Level} {l.Entry.Category}").Distinct().Take(3))}): ...{g.Key.Snippet}...")
            .ToList();

    private static readonly string RiskFile = Path.Combine(AppContext.BaseDirectory, "samples", "risk.onnx");

    private Task<HttpResponseMessage> RegisterVersion(string model, string metadata)
    {
        var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(File.ReadAllBytes(RiskFile));
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(file, "model", "risk.onnx");
        form.Add(new StringContent(metadata), "metadata");
        return _admin.PostAsync($"/v1/registry/models/{model}/versions", form);
    }

    private Task<HttpResponseMessage> Send(HttpMethod method, string path, string body, params (string Name, string Value)[] headers) =>
        Send(method, path, body, headers, _admin);

    private static Task<HttpResponseMessage> Send(HttpMethod method, string path, string body, (string Name, string Value)[] headers, HttpClient client)
    {
        var request = new HttpRequestMessage(method, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return client.SendAsync(request);
    }

    private Task<HttpResponseMessage> SendBinary(string path, string json, byte[] tensors, params (string Name, string Value)[] headers)
    {
        var header = Encoding.UTF8.GetBytes(json);
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent([.. header, .. tensors]) };
        request.Content.Headers.Add("Inference-Header-Content-Length", header.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return _admin.SendAsync(request);
    }

    private static float[] Values() => [.. Enumerable.Repeat(Measurement, 15), .. Enumerable.Repeat(Count, 15)];

    private static string Row() => string.Join(",", Values().Select(F));

    private static string F(float value) => value.ToString("R", System.Globalization.CultureInfo.InvariantCulture);

    private static ByteString Utf8(string text) => ByteString.CopyFromUtf8(text);

    private static byte[] Prefixed(params string[] elements) =>
        elements.SelectMany(e =>
        {
            var utf8 = Encoding.UTF8.GetBytes(e);
            var prefix = new byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(prefix, utf8.Length);
            return prefix.Concat(utf8);
        }).ToArray();

}

/// <summary>One log call as a sink sees it: the formatted message, the exception's text, the state and every scope.</summary>
internal sealed record CapturedLog(string Category, LogLevel Level, EventId EventId, string Message, string? Exception, string State, IReadOnlyList<string> Scopes)
{
    public string Text => string.Join("\n", new[] { Message, Exception ?? "", State }.Concat(Scopes));
}

/// <summary>A log sink that keeps everything, scopes included, as a JSON console with IncludeScopes would write it.</summary>
internal sealed class CapturingLoggerProvider : ILoggerProvider, ISupportExternalScope
{
    private IExternalScopeProvider _scopes = new LoggerExternalScopeProvider();

    public ConcurrentQueue<CapturedLog> Entries { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

    public void Dispose()
    {
    }

    private static string Describe(object? value)
    {
        var text = new StringBuilder(value?.ToString());
        if (value is IEnumerable<KeyValuePair<string, object?>> pairs)
        {
            foreach (var (key, item) in pairs)
            {
                text.Append(" | ").Append(key).Append('=').Append(item is System.Collections.IEnumerable list and not string ? string.Join(",", list.Cast<object?>()) : item?.ToString());
            }
        }

        return text.ToString();
    }

    private sealed class Logger(CapturingLoggerProvider provider, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => provider._scopes.Push(state);

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var scopes = new List<string>();
            provider._scopes.ForEachScope((scope, list) => list.Add(Describe(scope)), scopes);
            provider.Entries.Enqueue(new CapturedLog(category, logLevel, eventId, formatter(state, exception), exception?.ToString(), Describe(state), scopes));
        }
    }
}
