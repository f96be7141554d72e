using System.Security.Cryptography;
using System.Text.Json;
using Hl7.Fhir.Serialization;
using MedServe.Compliance.Audit;
using MedServe.Compliance.Journal;
using R4 = Hl7.Fhir.Model;

namespace MedServe.Tests.Compliance;

public sealed class FhirAuditExportTests : IAsyncLifetime
{
    private const string Source = "medserve-test";
    private const long T0 = 1_795_000_000_000;

    private readonly string _root = Path.Combine(Path.GetTempPath(), "medserve-fhir-audit-" + Guid.NewGuid().ToString("N"));
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private Log _log = null!;

    public Task InitializeAsync()
    {
        _log = new Log(AuditJournal.Open(new JournalOptions { Folder = Path.Combine(_root, "journal"), SegmentBytes = 1 << 20, CheckpointInterval = TimeSpan.FromHours(1) }, _key, TimeProvider.System));
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _log.Journal.DisposeAsync();
        Directory.Delete(_root, recursive: true);
        _key.Dispose();
    }

    [Fact]
    public async Task ReadRange_includes_from_excludes_to_and_keeps_chain_order()
    {
        // Appended out of time order, so chain order (seq) and time order differ.
        long[] offsets = [5, -1, 0, 9, 10, 3, 11];
        foreach (var offset in offsets)
        {
            await _log.AppendAsync(Event(T0 + offset, requestId: $"req{offset}"));
        }

        var records = await _log.ReadRangeAsync(At(T0), At(T0 + 10));

        Assert.Equal(["req5", "req0", "req9", "req3"], records.Select(r => r.Event.RequestId));
        // Record 2 is the journal's first signed checkpoint (after the first batch), which an export leaves out.
        Assert.Equal([1L, 4, 5, 7], records.Select(r => r.Sequence));
        var chain = JournalVerifier.Read(_log.Journal.Folder, 1, 100).Where(r => r.Entry.Kind != JournalKind.Checkpoint).ToDictionary(r => r.Sequence);
        Assert.All(records, r => Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(Body(chain[r.Sequence]))), r.Hash));
        Assert.True(_log.Journal.Verify().Intact);
        Assert.Equal(At(T0 + 5), records[0].Event.Time);
    }

    [Fact]
    public async Task ReadRange_boundaries_between_milliseconds_are_exact()
    {
        foreach (var offset in new long[] { -1, 0, 9, 10 })
        {
            await _log.AppendAsync(Event(T0 + offset, requestId: $"req{offset}"));
        }

        var halfMs = TimeSpan.FromTicks(TimeSpan.TicksPerMillisecond / 2);

        // [T0 - 0.5 ms, T0 + 9.5 ms): -1 is before it, 0 and 9 inside, 10 after.
        var inner = await _log.ReadRangeAsync(At(T0) - halfMs, At(T0 + 9) + halfMs);
        Assert.Equal(["req0", "req9"], inner.Select(r => r.Event.RequestId));

        // [T0 + 0.5 ms, T0 + 10.5 ms): 0 is before it, 10 inside.
        var shifted = await _log.ReadRangeAsync(At(T0) + halfMs, At(T0 + 10) + halfMs);
        Assert.Equal(["req9", "req10"], shifted.Select(r => r.Event.RequestId));

        Assert.Empty(await _log.ReadRangeAsync(At(T0), At(T0)));
        Assert.Empty(await _log.ReadRangeAsync(At(T0 + 10), At(T0)));
    }

    [Fact]
    public async Task A_range_exported_from_the_log_round_trips_as_R4_AuditEvents()
    {
        var pseudonyms = new Pseudonymizer(Enumerable.Range(1, 32).Select(b => (byte)b).ToArray());
        const string mrn = "MRN-0012345";
        var pseudonym = pseudonyms.Pseudonym(mrn);

        await _log.AppendAsync(Event(T0 - 1, requestId: "too-early"));
        await _log.AppendAsync(new AuditEvent(At(T0), "jwt:alice", "POST /v2/models/{model}/infer", "risk/1", "200", "req-infer", "10.1.2.3", pseudonym));
        await _log.AppendAsync(new AuditEvent(At(T0 + 1), "key:admin", "DELETE /v2/models/{model}", "risk/2", "403", "req-delete", "2001:db8::7", ""));
        await _log.AppendAsync(new AuditEvent(At(T0 + 2), "anonymous", "/inference.GRPCInferenceService/ModelInfer", "", "Unavailable", "req-grpc", "", ""));
        await _log.AppendAsync(Event(T0 + 3, requestId: "too-late"));

        var records = await _log.ReadRangeAsync(At(T0), At(T0 + 3));
        var (text, events) = await Export(records);

        Assert.Equal(3, events.Count);
        Assert.DoesNotContain("too-early", text, StringComparison.Ordinal);
        Assert.DoesNotContain("too-late", text, StringComparison.Ordinal);
        Assert.DoesNotContain(mrn, text, StringComparison.Ordinal);
        Assert.DoesNotContain("0012345", text, StringComparison.Ordinal);
        Assert.Contains(pseudonym, text, StringComparison.Ordinal);

        for (var i = 0; i < records.Count; i++)
        {
            var (record, fhir) = (records[i], events[i]);
            Assert.Equal(record.Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture), fhir.Id);
            Assert.Equal("http://terminology.hl7.org/CodeSystem/audit-event-type", fhir.Type.System);
            Assert.Equal("rest", fhir.Type.Code);
            Assert.Equal("RESTful Operation", fhir.Type.Display);
            var subtype = Assert.Single(fhir.Subtype);
            Assert.Equal("urn:medserve:audit-action", subtype.System);
            Assert.Equal(record.Event.Action, subtype.Code);
            Assert.Equal(record.Event.Time, fhir.Recorded);
            Assert.Equal("outcome " + record.Event.Outcome, fhir.OutcomeDesc);

            var agent = Assert.Single(fhir.Agent);
            Assert.True(agent.Requestor);
            Assert.Equal(record.Event.Actor, agent.Who!.Display);

            Assert.Equal(Source, fhir.Source.Observer.Display);
            var sourceType = Assert.Single(fhir.Source.Type);
            Assert.Equal("http://terminology.hl7.org/CodeSystem/security-source-type", sourceType.System);
            Assert.Equal("4", sourceType.Code);

            var target = fhir.Entity[0];
            Assert.Equal("http://terminology.hl7.org/CodeSystem/audit-entity-type", target.Type!.System);
            Assert.Equal("2", target.Type.Code);
            Assert.Equal(record.Event.RequestId, DetailValue(target, "request-id"));
            Assert.Equal(record.Hash, DetailValue(target, "record-hash"));
        }

        // POST .../infer: an inference, executed successfully, with the client's IP and the patient pseudonym.
        var infer = events[0];
        Assert.Equal(R4.AuditEvent.AuditEventAction.E, infer.Action);
        Assert.Equal(R4.AuditEvent.AuditEventOutcome.N0, infer.Outcome);
        Assert.Equal("10.1.2.3", infer.Agent[0].Network!.Address);
        Assert.Equal(R4.AuditEvent.AuditEventAgentNetworkType.N2, infer.Agent[0].Network!.Type);
        Assert.Equal("risk/1", infer.Entity[0].What!.Display);
        Assert.Equal(2, infer.Entity.Count);
        var patient = infer.Entity[1];
        Assert.Equal("urn:medserve:patient-pseudonym", patient.What!.Identifier!.System);
        Assert.Equal(pseudonym, patient.What.Identifier.Value);
        Assert.Null(patient.What.Reference);
        Assert.Null(patient.What.Display);
        Assert.Equal(("http://terminology.hl7.org/CodeSystem/audit-entity-type", "1"), (patient.Type!.System, patient.Type.Code));
        Assert.Equal(("http://terminology.hl7.org/CodeSystem/object-role", "1"), (patient.Role!.System, patient.Role.Code));
        Assert.Empty(patient.Detail);

        // DELETE refused: a minor failure, over IPv6, with no patient entity.
        var delete = events[1];
        Assert.Equal(R4.AuditEvent.AuditEventAction.D, delete.Action);
        Assert.Equal(R4.AuditEvent.AuditEventOutcome.N4, delete.Outcome);
        Assert.Equal("2001:db8::7", delete.Agent[0].Network!.Address);
        Assert.Single(delete.Entity);

        // gRPC ModelInfer, server unavailable: a serious failure; no address, no resource, yet the request id and hash are kept.
        var grpc = events[2];
        Assert.Equal(R4.AuditEvent.AuditEventAction.E, grpc.Action);
        Assert.Equal(R4.AuditEvent.AuditEventOutcome.N8, grpc.Outcome);
        Assert.Null(grpc.Agent[0].Network);
        Assert.Equal("-", Assert.Single(grpc.Entity).What!.Display);
    }

    [Theory]
    [InlineData("POST /v2/models/{model}/infer", R4.AuditEvent.AuditEventAction.E)]
    [InlineData("infer", R4.AuditEvent.AuditEventAction.E)]
    [InlineData("ModelInfer", R4.AuditEvent.AuditEventAction.E)]
    [InlineData("/inference.GRPCInferenceService/ModelInfer", R4.AuditEvent.AuditEventAction.E)]
    [InlineData("GET /v2/models/{model}", R4.AuditEvent.AuditEventAction.R)]
    [InlineData("GET /v2/models/inference-stats", R4.AuditEvent.AuditEventAction.R)]
    [InlineData("POST /v2/repository/models/{model}/load", R4.AuditEvent.AuditEventAction.C)]
    [InlineData("PUT /admin/keys/{id}", R4.AuditEvent.AuditEventAction.U)]
    [InlineData("PATCH /admin/keys/{id}", R4.AuditEvent.AuditEventAction.U)]
    [InlineData("DELETE /v2/models/{model}", R4.AuditEvent.AuditEventAction.D)]
    [InlineData("audit-verify", R4.AuditEvent.AuditEventAction.E)]
    public async Task The_action_code_follows_the_operation(string action, R4.AuditEvent.AuditEventAction expected)
    {
        var (_, events) = await Export([Record(1, new AuditEvent(At(T0), "key:admin", action, "risk/1", "200", "r1", "127.0.0.1", ""))]);

        Assert.Equal(expected, Assert.Single(events).Action);
    }

    [Theory]
    [InlineData("200", R4.AuditEvent.AuditEventOutcome.N0)]
    [InlineData("204", R4.AuditEvent.AuditEventOutcome.N0)]
    [InlineData("OK", R4.AuditEvent.AuditEventOutcome.N0)]
    [InlineData("400", R4.AuditEvent.AuditEventOutcome.N4)]
    [InlineData("401", R4.AuditEvent.AuditEventOutcome.N4)]
    [InlineData("403", R4.AuditEvent.AuditEventOutcome.N4)]
    [InlineData("429", R4.AuditEvent.AuditEventOutcome.N4)]
    [InlineData("PermissionDenied", R4.AuditEvent.AuditEventOutcome.N4)]
    [InlineData("InvalidArgument", R4.AuditEvent.AuditEventOutcome.N4)]
    [InlineData("500", R4.AuditEvent.AuditEventOutcome.N8)]
    [InlineData("503", R4.AuditEvent.AuditEventOutcome.N8)]
    [InlineData("Internal", R4.AuditEvent.AuditEventOutcome.N8)]
    [InlineData("Unavailable", R4.AuditEvent.AuditEventOutcome.N8)]
    [InlineData("DataLoss", R4.AuditEvent.AuditEventOutcome.N8)]
    [InlineData("Unknown", R4.AuditEvent.AuditEventOutcome.N8)]
    public async Task The_outcome_code_separates_success_minor_and_serious_failures(string outcome, R4.AuditEvent.AuditEventOutcome expected)
    {
        var (_, events) = await Export([Record(1, new AuditEvent(At(T0), "key:admin", "infer", "risk/1", outcome, "r1", "127.0.0.1", ""))]);

        var fhir = Assert.Single(events);
        Assert.Equal(expected, fhir.Outcome);
        Assert.Equal("outcome " + outcome, fhir.OutcomeDesc);
    }

    [Fact]
    public async Task Every_string_in_the_output_comes_from_the_record_or_the_fixed_vocabulary()
    {
        // A fixed secret: the output (hashes, pseudonym) is the same on every run.
        var pseudonyms = new Pseudonymizer(Enumerable.Range(1, 32).Select(b => (byte)b).ToArray());
        var withPatient = new AuditEvent(At(T0), "jwt:bob", "POST /v2/models/{model}/infer", "risk/1", "200", "req-1", "192.168.0.9", pseudonyms.Pseudonym("MRN-777"));
        var withoutPatient = new AuditEvent(At(T0 + 1), "key:ops", "GET /v2/health/ready", "", "OK", "", "", "");
        await _log.AppendAsync(withPatient);
        await _log.AppendAsync(withoutPatient);
        var records = await _log.ReadRangeAsync(At(T0), At(T0 + 2));

        var (text, events) = await Export(records);

        Assert.Equal(2, events.Count);
        Assert.DoesNotContain("MRN-777", text, StringComparison.Ordinal);
        string[] vocabulary =
        [
            "AuditEvent", "http://terminology.hl7.org/CodeSystem/audit-event-type", "rest", "RESTful Operation", "urn:medserve:audit-action",
            "E", "R", "C", "U", "D", "0", "4", "8", "2", "http://terminology.hl7.org/CodeSystem/security-source-type", "Application Server",
            "http://terminology.hl7.org/CodeSystem/audit-entity-type", "System Object", "Person", "1", "http://terminology.hl7.org/CodeSystem/object-role",
            "Patient", "urn:medserve:patient-pseudonym", "request-id", "record-hash", "-", Source,
        ];
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        for (var i = 0; i < records.Count; i++)
        {
            var record = records[i];
            var e = record.Event;
            var allowed = vocabulary.Concat(
            [
                record.Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Actor, e.Action, e.Resource, "outcome " + e.Outcome,
                e.RequestId, e.ClientAddress, e.PatientPseudonym, record.Hash,
            ]).Where(s => s.Length > 0).ToHashSet(StringComparer.Ordinal);
            using var document = JsonDocument.Parse(lines[i]);
            foreach (var (path, value) in Strings(document.RootElement, "$"))
            {
                if (path == "$.recorded")
                {
                    Assert.Equal(e.Time, DateTimeOffset.Parse(value, System.Globalization.CultureInfo.InvariantCulture));
                    continue;
                }

                Assert.True(allowed.Contains(value), $"{path} = '{value}' is not from record {record.Sequence}");
            }
        }

        Assert.DoesNotContain(events[1].Entity, entity => entity.What!.Identifier is not null);
        Assert.Null(DetailValue(events[1].Entity[0], "request-id"));
        Assert.Equal(records[1].Hash, DetailValue(events[1].Entity[0], "record-hash"));
    }

    [Fact]
    public async Task Line_breaks_inside_fields_cannot_split_or_forge_a_line()
    {
        var forged = "{\"resourceType\":\"AuditEvent\",\"id\":\"999\"}";
        var hostile = new AuditEvent(At(T0), "jwt:eve\n" + forged, "GET  /v2/models\r\n/{model}", "risk/1\u2028x", "200", "req\r\n1", "10.0.0.1", "");
        await _log.AppendAsync(hostile);
        await _log.AppendAsync(Event(T0 + 1, requestId: "req-2"));
        var records = await _log.ReadRangeAsync(At(T0), At(T0 + 2));

        var (text, events) = await Export(records);

        Assert.Equal(2, text.Count(c => c == '\n'));
        Assert.DoesNotContain('\r', text);
        Assert.Equal(["1", "3"], events.Select(e => e.Id)); // 2 is the first checkpoint
        Assert.Equal(hostile.Actor, events[0].Agent[0].Who!.Display);
        Assert.Equal(hostile.RequestId, DetailValue(events[0].Entity[0], "request-id"));
        Assert.Equal(hostile.Resource, events[0].Entity[0].What!.Display);

        // A FHIR code may not hold line breaks or doubled spaces: the action's code is its words joined by single spaces.
        Assert.Equal("GET /v2/models /{model}", events[0].Subtype[0].Code);
        Assert.Equal(R4.AuditEvent.AuditEventAction.R, events[0].Action);
    }

    [Fact]
    public async Task An_empty_range_writes_nothing_and_cancellation_stops_the_export()
    {
        var output = new StringWriter();
        Assert.Equal(0, await FhirAuditExport.WriteNdjsonAsync([], output, Source));
        Assert.Equal("", output.ToString());

        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            FhirAuditExport.WriteNdjsonAsync([Record(1, Event(T0, "r1"))], new StringWriter(), Source, cancelled.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _log.ReadRangeAsync(At(T0), At(T0 + 1), cancelled.Token));
    }

    /// <summary>Exports, checks the NDJSON framing and parses every line back with Firely's strict deserializer.</summary>
    private static async Task<(string Text, List<R4.AuditEvent> Events)> Export(IReadOnlyList<AuditRecord> records)
    {
        var output = new StringWriter { NewLine = "\r\n" };
        var count = await FhirAuditExport.WriteNdjsonAsync(records, output, Source);
        var text = output.ToString();

        Assert.Equal(records.Count, count);
        if (records.Count > 0)
        {
            Assert.EndsWith("\n", text, StringComparison.Ordinal);
        }

        var lines = text.Split('\n');
        Assert.Equal(records.Count, lines.Length - 1);
        Assert.Equal("", lines[^1]);
        var events = new List<R4.AuditEvent>();
        foreach (var line in lines[..^1])
        {
            Assert.DoesNotContain('\r', line);
            Assert.StartsWith("{\"resourceType\":\"AuditEvent\"", line, StringComparison.Ordinal);
            events.Add(FhirJsonDeserializer.STRICT.Deserialize<R4.AuditEvent>(line));
        }

        return (text, events);
    }

    private static string? DetailValue(R4.AuditEvent.EntityComponent entity, string type) =>
        entity.Detail.Where(d => d.Type == type).Select(d => ((R4.FhirString)d.Value).Value).SingleOrDefault();

    private static IEnumerable<(string Path, string Value)> Strings(JsonElement element, string path)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                yield return (path, element.GetString()!);
                break;
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    foreach (var item in Strings(property.Value, $"{path}.{property.Name}"))
                    {
                        yield return item;
                    }
                }

                break;
            case JsonValueKind.Array:
                var index = 0;
                foreach (var child in element.EnumerateArray())
                {
                    foreach (var item in Strings(child, $"{path}[{index++}]"))
                    {
                        yield return item;
                    }
                }

                break;
        }
    }

    private static DateTimeOffset At(long unixMs) => DateTimeOffset.FromUnixTimeMilliseconds(unixMs);

    private static AuditEvent Event(long unixMs, string requestId) =>
        new(At(unixMs), "key:admin", "infer", "risk/1", "200", requestId, "127.0.0.1", "");

    private static AuditRecord Record(long sequence, AuditEvent e) =>
        new(sequence, e, new string('0', 64), Convert.ToHexStringLower(SHA256.HashData(BitConverter.GetBytes(sequence))));

    /// <summary>A record's body as the format lays it out, rebuilt from its decoded fields.</summary>
    private static byte[] Body(JournalRecord record)
    {
        var body = JournalFormat.EncodeBody(record.Entry);
        JournalFormat.Seal(body, record.Sequence, record.PreviousHash);
        return body;
    }

    /// <summary>The journal, appended to with audit events as the server does for actions.</summary>
    private sealed class Log(AuditJournal journal)
    {
        public AuditJournal Journal { get; } = journal;

        public Task AppendAsync(AuditEvent e) =>
            Journal.AppendAsync(new JournalEntry(e.Time, JournalKind.Action, e.Actor, e.Action, e.Resource, e.Outcome, e.RequestId, e.ClientAddress, e.PatientPseudonym));

        public Task<IReadOnlyList<AuditRecord>> ReadRangeAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default)
        {
            cancellationToken.ThrowIfCancellationRequested();
            return Task.FromResult(Journal.ReadRange(from, to));
        }
    }
}
