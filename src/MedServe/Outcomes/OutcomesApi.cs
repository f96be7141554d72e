using System.Globalization;
using System.Text;
using System.Text.Json;
using MedServe.Compliance.Audit;
using MedServe.Compliance.Encryption;
using MedServe.Compliance.Journal;
using MedServe.Compliance.Predictions;
using MedServe.Http.V2;
using MedServe.Predictions;
using MedServe.Security;
using MedServe.Stats;
using MedServe.Stats.Clinical;
using MedServe.Stats.Design;

namespace MedServe.Outcomes;

/// <summary>
/// POST /v1/outcomes: clinical outcomes joined to the predictions they judge, journaled (durable
/// before the answer, encrypted) and projected beside the predictions. GET
/// /v1/models/{model}/performance: the clinical performance of a model's predictions that have
/// outcomes, from the statistics engine.
/// </summary>
public static class OutcomesApi
{
    /// <summary>Fewer outcomes than this (or one class only) give no figures, only the counts.</summary>
    public const int MinimumOutcomes = PerformanceReport.MinimumOutcomes;

    private const int MaxRecords = 100_000;

    public static IEndpointRouteBuilder MapOutcomesApi(this IEndpointRouteBuilder routes)
    {
        routes.MapPost("/v1/outcomes", Post).RequireAuthorization(Scopes.OutcomesWrite);
        routes.MapGet("/v1/models/{model}/performance", Performance).RequireAuthorization(Scopes.ModelsRead).WithMetadata(new AuditedEndpoint());
        return routes;
    }

    private sealed record Incoming(int Index, string? Id, string? Model, string? PatientId, DateTimeOffset? ObservedAt, double? Label, double? Value);

    private static async Task Post(HttpContext context, IPredictionStore store, PredictionProjectionService projection, AuditTrail trail,
        EnvelopeEncryption envelopes, Pseudonymizer pseudonyms, TimeProvider time, Microsoft.Extensions.Options.IOptions<Hosting.ServerOptions> options)
    {
        var window = options.Value.Outcomes.JoinWindow;
        List<Incoming> records;
        try
        {
            records = await ReadAsync(context).ConfigureAwait(false);
        }
        catch (StatisticsException e)
        {
            await ApiResponses.WriteErrorAsync(context.Response, StatusCodes.Status400BadRequest, e.Message).ConfigureAwait(false);
            return;
        }

        // The predictions made until now are in the store before they are looked up.
        await projection.CatchUpAsync(context.RequestAborted).ConfigureAwait(false);
        int matched = 0, unmatched = 0, duplicates = 0, conflicts = 0;
        var seen = new Dictionary<long, double>();
        var appends = new List<Task>();
        var requestId = context.Response.Headers[AuditMiddleware.RequestIdHeader].ToString();
        foreach (var record in records)
        {
            var prediction = record.Id is not null
                ? await store.FindAsync(record.Id, context.RequestAborted).ConfigureAwait(false)
                : await store.FindLatestForPatientAsync(record.Model!, pseudonyms.Pseudonym(record.PatientId!), record.ObservedAt!.Value, record.ObservedAt.Value - window, context.RequestAborted).ConfigureAwait(false);
            if (prediction is null)
            {
                unmatched++;
                continue;
            }

            matched++;
            var observed = record.Label ?? record.Value!.Value;
            double? earlier = seen.TryGetValue(prediction.Sequence, out var inBatch) ? inBatch
                : await store.GetOutcomeAsync(prediction.Sequence, context.RequestAborted).ConfigureAwait(false) is { } stored
                    ? OutcomeRecord.Read(envelopes, stored.Envelope, prediction.RequestId).Observed
                    : null;
            if (earlier == observed)
            {
                duplicates++;
                continue;
            }

            var conflict = earlier is not null;
            conflicts += conflict ? 1 : 0;
            seen[prediction.Sequence] = observed;
            var outcome = new OutcomeRecord(prediction.Sequence, record.Label, record.Value, record.ObservedAt, conflict);
            appends.Add(trail.AppendAsync(new JournalEntry(time.GetUtcNow(), JournalKind.Outcome, AuditTrail.Actor(context.User), "POST /v1/outcomes",
                $"{prediction.Model}/{prediction.Version}", conflict ? "conflict" : "matched", requestId, context.Connection.RemoteIpAddress?.ToString() ?? "", prediction.PatientPseudonym)
            {
                ClientRequestId = prediction.RequestId,
                Model = prediction.Model,
                Version = prediction.Version,
                Payload = outcome.Seal(envelopes, prediction.RequestId),
            }));
        }

        // Every record of the batch is appended at once (one group commit for them all), and all are durable before the answer.
        await Task.WhenAll(appends).ConfigureAwait(false);
        await projection.CatchUpAsync(context.RequestAborted).ConfigureAwait(false);
        await ApiResponses.WriteJsonAsync(context.Response, StatusCodes.Status200OK, w =>
        {
            w.WriteStartObject();
            w.WriteNumber("accepted", records.Count);
            w.WriteNumber("matched", matched);
            w.WriteNumber("unmatched", unmatched);
            w.WriteNumber("duplicates", duplicates);
            w.WriteNumber("conflicts", conflicts);
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    /// <summary>A JSON array, an object with "outcomes", one object, or NDJSON (application/x-ndjson); every record checked before any is stored.</summary>
    private static async Task<List<Incoming>> ReadAsync(HttpContext context)
    {
        using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
        var text = await reader.ReadToEndAsync(context.RequestAborted).ConfigureAwait(false);
        var elements = new List<JsonElement>();
        var documents = new List<JsonDocument>();
        try
        {
            if (context.Request.ContentType?.StartsWith("application/x-ndjson", StringComparison.OrdinalIgnoreCase) == true)
            {
                foreach (var line in text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0))
                {
                    var document = JsonDocument.Parse(line);
                    documents.Add(document);
                    elements.Add(document.RootElement);
                }
            }
            else
            {
                var document = JsonDocument.Parse(text);
                documents.Add(document);
                var root = document.RootElement;
                var list = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("outcomes", out var outcomes) ? outcomes : root;
                elements.AddRange(list.ValueKind == JsonValueKind.Array ? list.EnumerateArray() : [list]);
            }

            if (elements.Count > MaxRecords)
            {
                throw new StatisticsException($"at most {MaxRecords} outcomes per request; this one has {elements.Count}");
            }

            return [.. elements.Select(Parse)];
        }
        catch (JsonException e)
        {
            throw new StatisticsException($"the body is not JSON outcomes (an array, {{\"outcomes\": [...]}}, or NDJSON): {e.Message}");
        }
        finally
        {
            foreach (var document in documents)
            {
                document.Dispose();
            }
        }
    }

    private static Incoming Parse(JsonElement e, int index)
    {
        var where = $"outcome {index}";
        if (e.ValueKind != JsonValueKind.Object)
        {
            throw new StatisticsException($"{where}: expected an object");
        }

        double? label = null, value = null;
        if (e.TryGetProperty("label", out var l))
        {
            label = l.ValueKind == JsonValueKind.Number && l.TryGetDouble(out var v) && v is 0 or 1 ? v : throw new StatisticsException($"{where}: 'label' must be 0 or 1");
        }

        if (e.TryGetProperty("value", out var x))
        {
            value = x.ValueKind == JsonValueKind.Number && x.TryGetDouble(out var v) && double.IsFinite(v) ? v : throw new StatisticsException($"{where}: 'value' must be a finite number");
        }

        if ((label is null) == (value is null))
        {
            throw new StatisticsException($"{where}: give exactly one of 'label' (0 or 1) and 'value' (a number)");
        }

        var id = Text(e, "request_id", where);
        if (id is not null)
        {
            return new Incoming(index, id, null, null, null, label, value);
        }

        var model = Text(e, "model", where);
        var patient = Text(e, "patient_id", where);
        if (patient is not null)
        {
            // The same reading as an inference's patient_id, so both give the same pseudonym; the value is never echoed.
            try
            {
                patient = AuditDetails.PatientIdOf(Inference.InferenceParameter.Of(patient));
            }
            catch (Inference.InferenceException refused)
            {
                throw new StatisticsException($"{where}: {refused.Message}");
            }
        }

        var observed = Text(e, "observed_at", where);
        if (model is null || patient is null || observed is null)
        {
            throw new StatisticsException($"{where}: name its prediction with 'request_id', or with 'model', 'patient_id' and 'observed_at'");
        }

        if (!DateTimeOffset.TryParse(observed, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at))
        {
            throw new StatisticsException($"{where}: 'observed_at' {AuditTimeRange.Expected}");
        }

        return new Incoming(index, null, model, patient, at, label, value);
    }

    private static string? Text(JsonElement e, string field, string where) =>
        !e.TryGetProperty(field, out var value) ? null
        : value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 and <= 256 } text ? text
        : throw new StatisticsException($"{where}: '{field}' must be a string of 1 to 256 characters");

    /// <summary>
    /// The clinical performance (<see cref="PerformanceReport"/>) of a version's predictions in a
    /// window that have outcomes, scored as the model's monitoring spec says, with the AUROC
    /// estimated from every scored prediction of the window before (or beside) the outcomes.
    /// </summary>
    private static async Task Performance(HttpContext context, string model, IPredictionStore store, PredictionProjectionService projection, EnvelopeEncryption envelopes, Lifecycle.ModelManager models)
    {
        var query = context.Request.Query;
        var version = query["version"].ToString() is { Length: > 0 } v ? v : null;
        double? threshold = null;
        if (!AuditTimeRange.TryParse(query["from"], query["to"], out var from, out var to)
            || (query["threshold"].ToString() is { Length: > 0 } t && (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var given) || given is <= 0 or >= 1 || (threshold = given) is null)))
        {
            await ApiResponses.WriteErrorAsync(context.Response, StatusCodes.Status400BadRequest, "'from' and 'to' " + AuditTimeRange.Expected + "; 'threshold' a number between 0 and 1").ConfigureAwait(false);
            return;
        }

        var write = await PerformanceReportAsync(model, version, from, to, threshold, store, projection, envelopes, models, context.RequestAborted).ConfigureAwait(false);
        await ApiResponses.WriteJsonAsync(context.Response, StatusCodes.Status200OK, write).ConfigureAwait(false);
    }

    /// <summary>The monitoring spec, the predictions of the window that have outcomes (scored as the spec says), and every score of the window.</summary>
    public static async Task<(Repository.MonitoringSpec Spec, List<JudgedPrediction> Judged, List<double> AllScores)> JudgedAsync(string model, string? version, DateTimeOffset from, DateTimeOffset to,
        IPredictionStore store, PredictionProjectionService projection, EnvelopeEncryption envelopes, Lifecycle.ModelManager models, CancellationToken cancellationToken)
    {
        Repository.MonitoringSpec spec;
        try
        {
            spec = models.Find(model, version).Config.Monitoring;
        }
        catch (Inference.InferenceException)
        {
            // Not serving now (a retired version): its predictions are still judged, with the default spec.
            spec = Repository.MonitoringSpec.Default;
        }

        await projection.CatchUpAsync(cancellationToken).ConfigureAwait(false);
        var judged = new List<JudgedPrediction>();
        foreach (var row in await store.QueryWithOutcomesAsync(model, version, from, to, cancellationToken).ConfigureAwait(false))
        {
            var outcome = OutcomeRecord.Read(envelopes, row.Outcome.Envelope, row.Prediction.RequestId);
            if (row.Prediction.Payload.Length == 0)
            {
                continue;
            }

            var prediction = PredictionPayload.Decode(envelopes.Decrypt(row.Prediction.Payload, Encoding.UTF8.GetBytes(row.Prediction.RequestId)));
            if (PerformanceReport.Score(prediction, spec) is { } score && double.IsFinite(score))
            {
                judged.Add(new JudgedPrediction(score, outcome.Label, outcome.Value, prediction.Subgroups));
            }
        }

        // Before (or beside) the outcomes: what every scored prediction of the window implies, if the model is calibrated.
        var allScores = new List<double>();
        foreach (var prediction in await store.QueryAsync(new PredictionQuery(model, version, from, to, null, 0, 100_000), cancellationToken).ConfigureAwait(false))
        {
            if (prediction.Payload.Length > 0
                && PerformanceReport.Score(PredictionPayload.Decode(envelopes.Decrypt(prediction.Payload, Encoding.UTF8.GetBytes(prediction.RequestId))), spec) is { } score and >= 0 and <= 1)
            {
                allScores.Add(score);
            }
        }

        return (spec, judged, allScores);
    }

    /// <summary>The performance report of a version and window (the endpoint's answer, and the figures alert rules watch).</summary>
    public static async Task<Action<Utf8JsonWriter>> PerformanceReportAsync(string model, string? version, DateTimeOffset from, DateTimeOffset to, double? threshold,
        IPredictionStore store, PredictionProjectionService projection, EnvelopeEncryption envelopes, Lifecycle.ModelManager models, CancellationToken cancellationToken)
    {
        var (spec, judged, allScores) = await JudgedAsync(model, version, from, to, store, projection, envelopes, models, cancellationToken).ConfigureAwait(false);
        double? estimated = null;
        try
        {
            estimated = allScores.Count >= MinimumOutcomes ? Calibration.EstimatedAuroc(allScores) : null;
        }
        catch (StatisticsException)
        {
            // Every score 0 or 1: nothing to estimate from.
        }

        return w =>
        {
            w.WriteStartObject();
            w.WriteString("model", model);
            if (version is not null)
            {
                w.WriteString("version", version);
            }

            if (estimated is { } estimate)
            {
                w.WriteStartObject("estimated");
                w.WriteNumber("n", allScores.Count);
                w.WriteNumber("auroc", estimate);
                w.WriteString("assumption", "confidence-based: the AUROC the scores imply if the model is calibrated on this population (no outcomes used)");
                w.WriteEndObject();
            }

            PerformanceReport.Write(w, judged, spec, threshold ?? spec.Threshold);
            w.WriteEndObject();
        };
    }
}
