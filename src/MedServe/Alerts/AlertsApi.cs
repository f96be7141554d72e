using System.Text.Json;
using MedServe.Http.V2;
using MedServe.Security;

namespace MedServe.Alerts;

/// <summary>GET /v1/alerts (rules, their states, recent events); PUT and DELETE /v1/alerts/rules/{name}.</summary>
public static class AlertsApi
{
    public static IEndpointRouteBuilder MapAlertsApi(this IEndpointRouteBuilder routes)
    {
        routes.MapGet("/v1/alerts", List).RequireAuthorization(Scopes.ModelsRead);
        routes.MapPut("/v1/alerts/rules/{name}", Put).RequireAuthorization(Scopes.ModelsWrite).WithMetadata(new AuditedEndpoint());
        routes.MapDelete("/v1/alerts/rules/{name}", Delete).RequireAuthorization(Scopes.ModelsWrite).WithMetadata(new AuditedEndpoint());
        return routes;
    }

    private static async Task List(HttpContext context, IAlertStore store, WebhookSender webhooks)
    {
        var states = await store.StatesAsync(context.RequestAborted).ConfigureAwait(false);
        var rules = await store.RulesAsync(context.RequestAborted).ConfigureAwait(false);
        var events = await store.EventsAsync(100, context.RequestAborted).ConfigureAwait(false);
        await ApiResponses.WriteJsonAsync(context.Response, StatusCodes.Status200OK, w =>
        {
            w.WriteStartObject();
            w.WriteStartArray("rules");
            foreach (var json in rules)
            {
                using var rule = JsonDocument.Parse(json);
                var name = rule.RootElement.GetProperty("name").GetString()!;
                w.WriteStartObject();
                foreach (var property in rule.RootElement.EnumerateObject())
                {
                    property.WriteTo(w);
                }

                var state = states.TryGetValue(name, out var s) ? s : null;
                w.WriteString("state", state?.State ?? AlertEvaluator.Ok);
                if (state is not null)
                {
                    if (state.Since != DateTimeOffset.MinValue)
                    {
                        w.WriteString("since", state.Since);
                    }

                    if (state.LastValue is { } value)
                    {
                        w.WriteNumber("last_value", value);
                    }

                    w.WriteNumber("last_samples", state.LastSamples);
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteStartArray("events");
            foreach (var e in events)
            {
                w.WriteStartObject();
                e.Write(w);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteNumber("webhook_deliveries_pending", webhooks.Pending);
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    private static async Task Put(HttpContext context, string name, IAlertStore store, WebhookSender webhooks)
    {
        AlertRule rule;
        try
        {
            using var reader = new StreamReader(context.Request.Body);
            using var document = JsonDocument.Parse(await reader.ReadToEndAsync(context.RequestAborted).ConfigureAwait(false));
            rule = AlertRule.Parse(document.RootElement, webhooks.Names);
            if (rule.Name != name)
            {
                throw new AlertRuleException("the rule's 'name' must be the one in the path");
            }
        }
        catch (Exception e) when (e is AlertRuleException or JsonException)
        {
            await ApiResponses.WriteErrorAsync(context.Response, StatusCodes.Status400BadRequest, e is JsonException ? "the body is not a JSON rule" : e.Message).ConfigureAwait(false);
            return;
        }

        await store.SaveRuleAsync(rule, context.RequestAborted).ConfigureAwait(false);
        await ApiResponses.WriteJsonAsync(context.Response, StatusCodes.Status200OK, w =>
        {
            w.WriteStartObject();
            rule.Write(w);
            w.WriteEndObject();
        }).ConfigureAwait(false);
    }

    private static async Task Delete(HttpContext context, string name, IAlertStore store)
    {
        if (!await store.DeleteRuleAsync(name, context.RequestAborted).ConfigureAwait(false))
        {
            await ApiResponses.WriteErrorAsync(context.Response, StatusCodes.Status404NotFound, "no alert rule has that name").ConfigureAwait(false);
            return;
        }

        context.Response.StatusCode = StatusCodes.Status204NoContent;
    }
}
