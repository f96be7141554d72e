using System.Text.Json;
using MedServe.Compliance.Access;
using MedServe.Http.Codec;
using MedServe.Http.V2;
using MedServe.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace MedServe.Http.Admin;

/// <summary>
/// /v1/keys: API keys for the admin (and <c>medserve keys</c>). A created key's secret is in the
/// answer and nowhere else; every call here is audited under the admin scope.
/// </summary>
public static class KeysApi
{
    public const string Prefix = "/v1/keys";

    public static IEndpointRouteBuilder MapKeysApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup(Prefix).RequireAuthorization(Scopes.Admin);
        group.MapPost("", Create);
        group.MapGet("", List);
        group.MapDelete("/{name}", (HttpContext context, ApiKeyStore keys, string name) => Change(context, () => keys.RevokeAsync(name)));
        group.MapPost("/{name}/expire", (HttpContext context, ApiKeyStore keys, string name) => Change(context, () => keys.ExpireAsync(name)));
        return routes;
    }

    private static async Task Create(HttpContext context, ApiKeyStore keys)
    {
        try
        {
            using var body = await JsonBody.ReadObjectAsync(context, m => new ArgumentException(m)).ConfigureAwait(false);
            var root = body.RootElement;
            var name = String(root, "name") ?? throw new ArgumentException("'name' is required");
            if (context.Features.Get<AuditDetails>() is { } audit)
            {
                audit.Resource = name;
            }

            if (!root.TryGetProperty("scopes", out var scopeList) || scopeList.ValueKind != JsonValueKind.Array
                || scopeList.EnumerateArray().Any(s => s.ValueKind != JsonValueKind.String))
            {
                throw new ArgumentException("'scopes' must be an array of strings, e.g. [\"infer\", \"models:read\"]");
            }

            TimeSpan? lifetime = root.TryGetProperty("expires_in_days", out var days)
                ? days.ValueKind == JsonValueKind.Number && days.TryGetDouble(out var d) && d > 0 && d <= 3650 ? TimeSpan.FromDays(d) : throw new ArgumentException("'expires_in_days' must be a number of days between 0 and 3650")
                : null;
            int? rate = root.TryGetProperty("requests_per_second", out var r)
                ? r.ValueKind == JsonValueKind.Number && r.TryGetInt32(out var perSecond) ? perSecond : throw new ArgumentException("'requests_per_second' must be an integer")
                : null;
            var created = await keys.CreateAsync(name, scopeList.EnumerateArray().Select(s => s.GetString()!).ToList(), lifetime, rate).ConfigureAwait(false);
            await ApiResponses.WriteJsonAsync(context.Response, StatusCodes.Status201Created, w =>
            {
                w.WriteStartObject();
                Write(w, created.Info);
                w.WriteString("key", created.Key);
                w.WriteEndObject();
            }).ConfigureAwait(false);
        }
        catch (ArgumentException e)
        {
            await ApiResponses.WriteErrorAsync(context.Response, e is ApiKeyNameTakenException
                ? StatusCodes.Status409Conflict
                : StatusCodes.Status400BadRequest, e.Message).ConfigureAwait(false);
        }
    }

    private static async Task List(HttpContext context, ApiKeyStore keys)
    {
        var all = await keys.ListAsync().ConfigureAwait(false);
        await ApiResponses.WriteJsonAsync(context.Response, StatusCodes.Status200OK, w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("keys");
            foreach (var key in all)
            {
                w.WriteStartObject();
                Write(w, key);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    private static async Task Change(HttpContext context, Func<Task> change)
    {
        try
        {
            await change().ConfigureAwait(false);
            context.Response.StatusCode = StatusCodes.Status204NoContent;
        }
        catch (ArgumentException e)
        {
            await ApiResponses.WriteErrorAsync(context.Response, StatusCodes.Status404NotFound, e.Message).ConfigureAwait(false);
        }
    }

    private static void Write(Utf8JsonWriter w, ApiKeyInfo key)
    {
        w.WriteString("name", key.Name);
        w.WriteString("id", key.Id);
        w.WriteStartArray("scopes");
        foreach (var scope in key.Scopes)
        {
            w.WriteStringValue(scope);
        }

        w.WriteEndArray();
        w.WriteString("created_at", key.CreatedAt);
        WriteTime(w, "expires_at", key.ExpiresAt);
        WriteTime(w, "revoked_at", key.RevokedAt);
        if (key.RequestsPerSecond is { } rate)
        {
            w.WriteNumber("requests_per_second", rate);
        }
        else
        {
            w.WriteNull("requests_per_second");
        }
    }

    private static void WriteTime(Utf8JsonWriter w, string name, DateTimeOffset? time)
    {
        if (time is { } t)
        {
            w.WriteString(name, t);
        }
        else
        {
            w.WriteNull(name);
        }
    }

    private static string? String(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
