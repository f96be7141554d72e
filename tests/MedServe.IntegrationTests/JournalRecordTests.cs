using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Google.Protobuf;
using MedServe.Compliance.Encryption;
using MedServe.Compliance.Journal;
using MedServe.Grpc.Protocol;
using MedServe.IntegrationTests.Support;
using MedServe.Compliance.Predictions;
using MedServe.Predictions;

namespace MedServe.IntegrationTests;

/// <summary>An inference's journal record: the audit fields and the prediction (inputs, outputs) at once, encrypted at rest.</summary>
[Collection(ServerCollection.Name)]
public sealed class JournalRecordTests(ServerFixture server)
{
    [Fact]
    public async Task A_rest_inference_record_holds_model_version_client_id_latency_and_its_encrypted_inputs_and_outputs()
    {
        var values = Enumerable.Range(1, 30).Select(i => i / 8f).ToArray();
        using var response = await server.PostJsonAsync("/v2/models/risk/infer",
            JsonSerializer.Serialize(new { id = "client-req-7", inputs = new[] { new { name = "input", shape = new[] { 1, 30 }, datatype = "FP32", data = values } } }));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var answer = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        var requestId = response.Headers.GetValues("X-Request-Id").Single();

        var record = await RecordAsync(r => r.Entry.RequestId == requestId);
        var e = record.Entry;
        Assert.Equal(JournalKind.Inference, e.Kind);
        Assert.Equal(("risk", "1", "client-req-7", "200"), (e.Model, e.Version, e.ClientRequestId, e.Outcome));
        Assert.InRange(e.LatencyMicroseconds, 1, 60_000_000);

        var (inputs, outputs, summarised) = Decrypt(record);
        Assert.False(summarised);
        var input = Assert.Single(inputs);
        Assert.Equal("input", input.Name);
        Assert.Equal([1L, 30], input.Shape);
        Assert.Equal(values, MemoryMarshal.Cast<byte, float>(input.Data).ToArray());
        var output = Assert.Single(outputs);
        Assert.Equal(answer.GetProperty("outputs")[0].GetProperty("data")[0].GetSingle(), MemoryMarshal.Cast<byte, float>(output.Data)[0]);
    }

    [Fact]
    public async Task A_grpc_inference_is_journaled_the_same_way()
    {
        var values = Enumerable.Repeat(0.75f, 30).ToArray();
        var request = new ModelInferRequest { ModelName = "risk", Id = "grpc-journal-1" };
        request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "FP32", Shape = { 1, 30 } });
        request.RawInputContents.Add(ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan())));
        var response = await server.Grpc.ModelInferAsync(request);

        var record = await RecordAsync(r => r.Entry.ClientRequestId == "grpc-journal-1");
        Assert.Equal((JournalKind.Inference, "risk", "1", "OK"), (record.Entry.Kind, record.Entry.Model, record.Entry.Version, record.Entry.Outcome));
        var (inputs, outputs, _) = Decrypt(record);
        Assert.Equal(values, MemoryMarshal.Cast<byte, float>(Assert.Single(inputs).Data).ToArray());
        Assert.Equal(response.RawOutputContents[0].ToByteArray(), Assert.Single(outputs).Data);
    }

    [Fact]
    public async Task A_canary_input_and_patient_are_in_no_file_under_the_data_dir_as_text_or_float32_bytes()
    {
        const float canary = 31337.4142f;
        const string patient = "MRN-CANARY-5150";
        var values = Enumerable.Repeat(canary, 30).ToArray();
        using (var rest = await server.PostJsonAsync("/v2/models/risk/infer",
            JsonSerializer.Serialize(new { parameters = new { patient_id = patient }, inputs = new[] { new { name = "input", shape = new[] { 1, 30 }, datatype = "FP32", data = values } } })))
        {
            Assert.Equal(HttpStatusCode.OK, rest.StatusCode);
        }

        var grpc = new ModelInferRequest { ModelName = "risk", Id = "canary-grpc" };
        grpc.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "FP32", Shape = { 1, 30 } });
        grpc.RawInputContents.Add(ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan())));
        await server.Grpc.ModelInferAsync(grpc);

        // The record is there (so the canary went through the journal), and its payload holds the canary once decrypted.
        var record = await RecordAsync(r => r.Entry.ClientRequestId == "canary-grpc");
        Assert.Equal(canary, MemoryMarshal.Cast<byte, float>(Decrypt(record).Inputs[0].Data)[0]);
        await server.Service<PredictionProjectionService>().CatchUpAsync();

        byte[][] needles =
        [
            BitConverter.GetBytes(canary), Encoding.UTF8.GetBytes("31337.41"), Encoding.UTF8.GetBytes(patient), Encoding.Unicode.GetBytes(patient),
        ];
        var root = server.Service<Microsoft.Extensions.Options.IOptions<MedServe.Hosting.ServerOptions>>().Value.ResolvedDataDir;
        // The lock file is held exclusively by the server, and holds nothing.
        var files = Directory.GetFiles(root, "*", SearchOption.AllDirectories).Where(f => Path.GetFileName(f) != "medserve.lock").ToList();
        Assert.Contains(files, f => f.EndsWith(".seg", StringComparison.Ordinal));
        foreach (var file in files)
        {
            byte[] bytes;
            using (var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
            {
                bytes = new byte[stream.Length];
                stream.ReadExactly(bytes);
            }

            foreach (var needle in needles)
            {
                Assert.True(bytes.AsSpan().IndexOf(needle) < 0, $"{Path.GetRelativePath(root, file)} holds the canary {Convert.ToHexString(needle)}");
            }
        }
    }

    [Fact]
    public async Task Stored_predictions_are_read_back_by_model_and_patient_and_each_read_is_journaled()
    {
        const string patient = "MRN-PRED-2718";
        var values = Enumerable.Range(0, 30).Select(i => i * 0.5f).ToArray();
        using (var request = new HttpRequestMessage(HttpMethod.Post, "/v2/models/risk/infer")
        {
            Content = new StringContent(JsonSerializer.Serialize(new { id = "pred-1", inputs = new[] { new { name = "input", shape = new[] { 1, 30 }, datatype = "FP32", data = values } } })),
        })
        {
            request.Headers.Add("X-Patient-Id", patient);
            using var inferred = await server.Client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, inferred.StatusCode);
        }

        await server.Service<AuditJournal>().Writer!.FlushAsync();
        await server.Service<PredictionProjectionService>().CatchUpAsync();

        using var read = new HttpRequestMessage(HttpMethod.Get, "/v1/predictions/risk?version=1&limit=1000");
        read.Headers.Add("X-Patient-Id", patient);
        using var answer = await server.Client.SendAsync(read);
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        var prediction = Assert.Single(JsonDocument.Parse(await answer.Content.ReadAsStringAsync()).RootElement.GetProperty("predictions").EnumerateArray());
        Assert.Equal(("pred-1", "1", "200"), (prediction.GetProperty("id").GetString(), prediction.GetProperty("version").GetString(), prediction.GetProperty("outcome").GetString()));
        Assert.Equal(values, prediction.GetProperty("inputs")[0].GetProperty("data").EnumerateArray().Select(v => v.GetSingle()));
        Assert.Equal(1, prediction.GetProperty("outputs").GetArrayLength());

        // The read is a journal record carrying the patient's pseudonym, never the identifier.
        var readId = answer.Headers.GetValues("X-Request-Id").Single();
        var record = await RecordAsync(r => r.Entry.RequestId == readId);
        Assert.Equal(("GET /v1/predictions/{model}", "risk", "200"), (record.Entry.Action, record.Entry.Resource, record.Entry.Outcome));
        Assert.Equal(server.Service<MedServe.Compliance.Audit.Pseudonymizer>().Pseudonym(patient), record.Entry.PatientPseudonym);

        // A key that may infer may not read what was inferred; a bad query is a 400 that says what is wrong.
        using var inferOnly = server.CreateClient(await server.CreateKeyAsync("pred-infer-only", "infer"));
        Assert.Equal(HttpStatusCode.Forbidden, (await inferOnly.GetAsync("/v1/predictions/risk")).StatusCode);
        using var bad = await server.Client.GetAsync("/v1/predictions/risk?limit=0");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("'limit'", (await ServerFixture.JsonAsync(bad)).GetProperty("error").GetString());
    }

    [Fact]
    public async Task A_lost_prediction_store_is_rebuilt_from_the_journal()
    {
        using (var inferred = await server.PostJsonAsync("/v2/models/risk/infer",
            """{"id":"rebuild-1","inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}]}"""))
        {
            Assert.Equal(HttpStatusCode.OK, inferred.StatusCode);
        }

        var journal = server.Service<AuditJournal>();
        await journal.Writer!.FlushAsync();
        var path = Path.Combine(Path.GetTempPath(), $"medserve-rebuilt-{Guid.NewGuid():N}.db");
        try
        {
            await using var fresh = await SqlitePredictionStore.OpenAsync(path);
            using var projector = new PredictionProjectionService(server.Service<MedServe.Security.AuditTrail>(), fresh, server.Service<EnvelopeEncryption>(), TimeProvider.System,
                Microsoft.Extensions.Logging.Abstractions.NullLogger<PredictionProjectionService>.Instance);
            await projector.CatchUpAsync();

            var inferences = JournalVerifier.Read(journal.Folder, 1, int.MaxValue, journal.Writer.DurableSequence).Where(r => r.Entry is { Kind: JournalKind.Inference, Model: "risk" }).ToList();
            var stored = await fresh.QueryAsync(new PredictionQuery("risk", null, DateTimeOffset.MinValue, DateTimeOffset.MaxValue, null, 0, 100_000));
            Assert.Equal(inferences.Select(r => r.Sequence), stored.Select(p => p.Sequence));
            Assert.Contains(stored, p => p.ClientRequestId == "rebuild-1");
            Assert.True(await fresh.ProjectedThroughAsync() >= inferences[^1].Sequence);
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            File.Delete(path);
        }
    }

    private async Task<JournalRecord> RecordAsync(Func<JournalRecord, bool> match)
    {
        var journal = server.Service<AuditJournal>();
        await journal.Writer!.FlushAsync();
        return JournalVerifier.Read(journal.Folder, 1, int.MaxValue).Single(match);
    }

    private DecodedPrediction Decrypt(JournalRecord record)
    {
        Assert.NotEqual(0, record.Entry.Payload.Length);
        var clear = server.Service<EnvelopeEncryption>().Decrypt(record.Entry.Payload.Span, Encoding.UTF8.GetBytes(record.Entry.RequestId));
        return PredictionPayload.Decode(clear);
    }
}
