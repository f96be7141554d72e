using System.Globalization;
using System.Text.Json;
using MedServe.Inference;
using MedServe.Lifecycle;
using MedServe.Security;
using MedServe.Statistics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace MedServe.Http.V2;

/// <summary>Triton's statistics extension: GET v2/models[/{model}[/versions/{version}]]/stats.</summary>
public static class StatisticsApi
{
    public static IEndpointRouteBuilder MapStatisticsApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/v2/models/stats", (HttpContext context, ModelManager models) =>
            Write(context, models.StatisticsScope(null, null))).RequireAuthorization(Scopes.ModelsRead);
        routes.MapGet("/v2/models/{model}/stats", (HttpContext context, ModelManager models, string model) =>
            ModelApi.Guard(context, () => Write(context, models.StatisticsScope(model, null)))).RequireAuthorization(Scopes.ModelsRead);
        routes.MapGet("/v2/models/{model}/versions/{version}/stats", (HttpContext context, ModelManager models, string model, string version) =>
            ModelApi.Guard(context, () => Write(context, models.StatisticsScope(model, version)))).RequireAuthorization(Scopes.ModelsRead);
        return routes;
    }

    private static Task Write(HttpContext context, IReadOnlyList<ModelVersion> versions) =>
        ApiResponses.WriteJsonAsync(context.Response, StatusCodes.Status200OK, w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("model_stats");
            foreach (var version in versions)
            {
                WriteVersion(w, version);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        });

    private static void WriteVersion(Utf8JsonWriter w, ModelVersion version)
    {
        var stats = version.Statistics;
        w.WriteStartObject();
        w.WriteString("name", version.Name);
        w.WriteString("version", version.Version.ToString(CultureInfo.InvariantCulture));
        w.WriteNumber("last_inference", stats.LastInferenceMs);
        w.WriteNumber("inference_count", stats.InferenceCount);
        w.WriteNumber("execution_count", stats.ExecutionCount);
        w.WriteStartObject("inference_stats");
        Duration(w, "success", stats.Success);
        Duration(w, "fail", stats.Fail);
        Duration(w, "queue", stats.Queue);
        Duration(w, "compute_input", stats.ComputeInput);
        Duration(w, "compute_infer", stats.ComputeInfer);
        Duration(w, "compute_output", stats.ComputeOutput);
        Duration(w, "cache_hit", null);
        Duration(w, "cache_miss", null);
        w.WriteEndObject();
        w.WriteStartObject("response_stats");
        w.WriteEndObject();
        w.WriteStartArray("batch_stats");
        foreach (var (size, batch) in stats.Batches)
        {
            w.WriteStartObject();
            w.WriteNumber("batch_size", size);
            Duration(w, "compute_input", batch.ComputeInput);
            Duration(w, "compute_infer", batch.ComputeInfer);
            Duration(w, "compute_output", batch.ComputeOutput);
            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteStartArray("memory_usage");
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void Duration(Utf8JsonWriter w, string name, DurationStat? stat)
    {
        w.WriteStartObject(name);
        w.WriteNumber("count", stat?.Count ?? 0);
        w.WriteNumber("ns", stat?.Nanoseconds ?? 0);
        w.WriteEndObject();
    }
}
