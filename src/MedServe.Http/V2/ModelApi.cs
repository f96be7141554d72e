using System.Globalization;
using MedServe.Buffers;
using MedServe.Http.Codec;
using MedServe.Inference;
using MedServe.Lifecycle;
using MedServe.Repository;
using MedServe.Security;
using MedServe.Tensors;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;

namespace MedServe.Http.V2;

/// <summary>
/// Per-model routes: metadata, readiness, configuration and inference, each with and without
/// <c>/versions/{version}</c>.
/// </summary>
public static class ModelApi
{
    public static IEndpointRouteBuilder MapModelApi(this IEndpointRouteBuilder routes)
    {
        foreach (var prefix in new[] { "/v2/models/{model}", "/v2/models/{model}/versions/{version}" })
        {
            routes.MapGet(prefix, Metadata).RequireAuthorization(Scopes.ModelsRead);
            routes.MapGet(prefix + "/ready", Ready).RequireAuthorization(Scopes.ModelsRead);
            routes.MapGet(prefix + "/config", Config).RequireAuthorization(Scopes.ModelsRead);
            routes.MapPost(prefix + "/infer", Infer).RequireAuthorization(Scopes.Infer);
        }

        return routes;
    }

    private static Task Metadata(HttpContext context, ModelManager models, string model, string? version = null) =>
        Guard(context, () =>
        {
            var target = models.Find(model, version);
            var versions = string.IsNullOrEmpty(version)
                ? models.ReadyVersions(model).Select(v => v.Version).ToList()
                : [target.Version];
            var config = target.Config;
            return ApiResponses.WriteJsonAsync(context.Response, StatusCodes.Status200OK, w =>
            {
                w.WriteStartObject();
                w.WriteString("name", model);
                w.WriteStartArray("versions");
                foreach (var v in versions)
                {
                    w.WriteStringValue(v.ToString(CultureInfo.InvariantCulture));
                }

                w.WriteEndArray();
                w.WriteString("platform", config.Platform.Length > 0 ? config.Platform : config.Backend);
                WriteTensors(w, "inputs", config, config.Inputs);
                WriteTensors(w, "outputs", config, config.Outputs);
                w.WriteEndObject();
            });
        });

    private static Task Ready(HttpContext context, ModelManager models, string model, string? version = null) =>
        Guard(context, () =>
        {
            var ready = models.Find(model, version).IsReady;
            return ApiResponses.WriteJsonAsync(context.Response, ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable, w =>
            {
                w.WriteStartObject();
                w.WriteString("name", model);
                w.WriteBoolean("ready", ready);
                w.WriteEndObject();
            });
        });

    private static Task Config(HttpContext context, ModelManager models, string model, string? version = null) =>
        Guard(context, () =>
        {
            var config = models.Find(model, version).Config;
            return ApiResponses.WriteJsonAsync(context.Response, StatusCodes.Status200OK, w => ModelConfigJson.Write(w, config));
        });

    private static async Task Infer(HttpContext context, ModelManager models, IOptions<HttpFrontendOptions> options, InFlightBytes budget, string model, string? version = null)
    {
        BodyBuffer body = default;
        using var request = new InferenceRequest { Budget = budget };
        try
        {
            var http = context.Request;
            var limits = options.Value;
            body = await RequestBody.ReadAsync(http, limits.MaxRequestBodyBytes, limits.MaxDecompressionRatio, budget, context.RequestAborted).ConfigureAwait(false);
            long? headerLength = null;
            if (http.Headers.TryGetValue(InferResponseWriter.HeaderLengthHeader, out var header))
            {
                if (!long.TryParse(header.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var parsed))
                {
                    throw InferenceException.Invalid($"{InferResponseWriter.HeaderLengthHeader} must be a non-negative integer, not '{header}'");
                }

                headerLength = parsed;
            }

            InferRequestReader.Read(body.Memory, headerLength, request);
            var audit = context.Features.Get<AuditDetails>();
            var patient = AuditDetails.PatientIdFrom(request.Parameters);
            if (audit is not null && patient is not null)
            {
                audit.PatientId = patient;
            }

            request.Sink = audit;

            using var result = await models.InferAsync(model, version, request, context.RequestAborted).ConfigureAwait(false);
            if (audit is not null)
            {
                audit.Resource = string.Create(CultureInfo.InvariantCulture, $"{model}/{result.ModelVersion}");
            }

            await InferResponseWriter.WriteAsync(context.Response, model, request, result).ConfigureAwait(false);
        }
        catch (InferenceException e) when (e.Kind == InferenceErrorKind.Cancelled && TimedOut(context))
        {
            // The server's request timeout, not the client, cancelled it: the timeout middleware answers 504.
            throw new OperationCanceledException(e.Message, e, context.RequestAborted);
        }
        catch (InferenceException e)
        {
            await ApiResponses.WriteErrorAsync(context.Response, e).ConfigureAwait(false);
        }
        catch (BadHttpRequestException e)
        {
            await ApiResponses.WriteErrorAsync(context.Response, e.StatusCode, $"bad request body: {e.Message}").ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested && !TimedOut(context))
        {
            // The client went away; nobody is left to answer.
        }
        finally
        {
            body.Dispose();
        }
    }

    private static bool TimedOut(HttpContext context) =>
        context.Features.Get<Microsoft.AspNetCore.Http.Timeouts.IHttpRequestTimeoutFeature>()?.RequestTimeoutToken.IsCancellationRequested == true;

    internal static async Task Guard(HttpContext context, Func<Task> action)
    {
        try
        {
            await action().ConfigureAwait(false);
        }
        catch (InferenceException e)
        {
            await ApiResponses.WriteErrorAsync(context.Response, e).ConfigureAwait(false);
        }
    }

    private static void WriteTensors(System.Text.Json.Utf8JsonWriter w, string field, ModelConfig config, IReadOnlyList<TensorConfig> tensors)
    {
        w.WriteStartArray(field);
        foreach (var tensor in tensors)
        {
            w.WriteStartObject();
            w.WriteString("name", tensor.Name);
            w.WriteString("datatype", tensor.DataType.ToWireName());
            w.WriteStartArray("shape");
            foreach (var dim in config.WireShape(tensor))
            {
                w.WriteNumberValue(dim);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        w.WriteEndArray();
    }
}
