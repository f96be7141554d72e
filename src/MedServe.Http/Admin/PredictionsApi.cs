using System.Globalization;
using System.Text;
using System.Text.Json;
using MedServe.Compliance.Audit;
using MedServe.Compliance.Encryption;
using MedServe.Compliance.Predictions;
using MedServe.Http.V2;
using MedServe.Predictions;
using MedServe.Repository;
using MedServe.Security;
using MedServe.Tensors;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace MedServe.Http.Admin;

/// <summary>
/// GET /v1/predictions/{model}: the prediction log, decrypted, for monitoring and review. Needs
/// <c>predictions:read</c>; every read is itself a journal record (with the patient's pseudonym
/// when one is asked for). A patient is named by the X-Patient-Id header, never in the URL.
/// Query: version, from, to (ISO 8601; from inclusive, to exclusive), after (a sequence, for
/// paging) and limit (1 to 1000, default 100).
/// </summary>
public static class PredictionsApi
{
    public const string Prefix = "/v1/predictions";
    private const int MaxLimit = 1000;

    public static IEndpointRouteBuilder MapPredictionsApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet(Prefix + "/{model}", List).RequireAuthorization(Scopes.PredictionsRead);
        return routes;
    }

    private static async Task List(HttpContext context, string model, IPredictionStore store, EnvelopeEncryption envelopes, Pseudonymizer pseudonyms)
    {
        var query = context.Request.Query;
        var error = Parse(query, out var version, out var from, out var to, out var after, out var limit);
        if (error is null && !ModelNames.IsValid(model))
        {
            error = $"'{ModelNames.Quote(model)}' is not a model name: {ModelNames.Grammar}";
        }

        if (error is not null)
        {
            await ApiResponses.WriteErrorAsync(context.Response, StatusCodes.Status400BadRequest, error).ConfigureAwait(false);
            return;
        }

        string? patient = null;
        if (context.Request.Headers.TryGetValue(AuditDetails.PatientHeader, out var header))
        {
            patient = pseudonyms.Pseudonym(header.ToString());
        }

        var found = await store.QueryAsync(new PredictionQuery(model, version, from, to, patient, after, limit), context.RequestAborted).ConfigureAwait(false);
        await ApiResponses.WriteJsonAsync(context.Response, StatusCodes.Status200OK, w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("predictions");
            foreach (var prediction in found)
            {
                Write(w, prediction, envelopes);
            }

            w.WriteEndArray();
            if (found.Count == limit)
            {
                w.WriteNumber("next_after", found[^1].Sequence);
            }

            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    private static string? Parse(IQueryCollection query, out string? version, out DateTimeOffset from, out DateTimeOffset to, out long after, out int limit)
    {
        version = query["version"].ToString() is { Length: > 0 } v ? v : null;
        after = 0;
        limit = 100;
        if (!AuditTimeRange.TryParse(query["from"], query["to"], out from, out to))
        {
            return "'from' and 'to' " + AuditTimeRange.Expected;
        }

        if (version is not null && !long.TryParse(version, NumberStyles.None, CultureInfo.InvariantCulture, out _))
        {
            return "'version' must be a version number";
        }

        if (query["after"].ToString() is { Length: > 0 } a && !long.TryParse(a, NumberStyles.None, CultureInfo.InvariantCulture, out after))
        {
            return "'after' must be a record sequence number (the 'next_after' of the previous page)";
        }

        if (query["limit"].ToString() is { Length: > 0 } l && (!int.TryParse(l, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > MaxLimit))
        {
            return $"'limit' must be an integer from 1 to {MaxLimit}";
        }

        return null;
    }

    private static void Write(Utf8JsonWriter w, StoredPrediction p, EnvelopeEncryption envelopes)
    {
        w.WriteStartObject();
        w.WriteNumber("sequence", p.Sequence);
        w.WriteString("time", p.Time);
        w.WriteString("model", p.Model);
        w.WriteString("version", p.Version);
        w.WriteString("request_id", p.RequestId);
        if (p.ClientRequestId.Length > 0)
        {
            w.WriteString("id", p.ClientRequestId);
        }

        w.WriteString("outcome", p.Outcome);
        w.WriteNumber("latency_us", p.LatencyMicroseconds);
        if (p.PatientPseudonym.Length > 0)
        {
            w.WriteString("patient_pseudonym", p.PatientPseudonym);
        }

        if (p.Payload.Length > 0)
        {
            var (inputs, outputs, summarised) = PredictionPayload.Decode(envelopes.Decrypt(p.Payload, Encoding.UTF8.GetBytes(p.RequestId)));
            w.WriteBoolean("inputs_summarised", summarised);
            Tensors(w, "inputs", inputs);
            Tensors(w, "outputs", outputs);
        }

        w.WriteEndObject();
    }

    private static void Tensors(Utf8JsonWriter w, string field, IReadOnlyList<LoggedTensor> tensors)
    {
        w.WriteStartArray(field);
        foreach (var t in tensors)
        {
            w.WriteStartObject();
            w.WriteString("name", t.Name);
            w.WriteString("datatype", t.DataType.ToWireName());
            w.WriteStartArray("shape");
            foreach (var dim in t.Shape)
            {
                w.WriteNumberValue(dim);
            }

            w.WriteEndArray();
            if (t.Data is { } data)
            {
                w.WriteStartArray("data");
                var size = t.DataType.ElementSize();
                if (size == 0)
                {
                    foreach (var element in BytesTensor.Elements(data))
                    {
                        w.WriteStringValue(Encoding.UTF8.GetString(element));
                    }
                }
                else
                {
                    for (var i = 0; i + size <= data.Length; i += size)
                    {
                        Number(w, PredictionPayload.Element(t.DataType, data.AsSpan(i, size)));
                    }
                }

                w.WriteEndArray();
            }
            else
            {
                w.WriteString("sha256", Convert.ToHexStringLower(t.Digest!));
                var s = t.Summary!;
                w.WriteStartObject("summary");
                w.WriteNumber("count", s.Count);
                w.WritePropertyName("min");
                Number(w, s.Min);
                w.WritePropertyName("max");
                Number(w, s.Max);
                w.WritePropertyName("mean");
                Number(w, s.Mean);
                w.WritePropertyName("std");
                Number(w, s.StdDev);
                w.WriteEndObject();
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
    }

    /// <summary>JSON has no NaN or infinity: those are written as null.</summary>
    private static void Number(Utf8JsonWriter w, double value)
    {
        if (double.IsFinite(value))
        {
            w.WriteNumberValue(value);
        }
        else
        {
            w.WriteNullValue();
        }
    }
}
