using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;

namespace MedServe.Security;

/// <summary>The principal must hold a scope; for <c>infer</c> on a route with a model, a scope for that model will do.</summary>
public sealed record ScopeRequirement(string Scope) : IAuthorizationRequirement;

/// <summary>
/// One authorization policy per scope, named by the scope, so an endpoint declares
/// <c>.RequireAuthorization(Scopes.ModelsRead)</c>. An endpoint that declares nothing falls back
/// to <c>admin</c>: a route added without a thought is closed, not open.
/// </summary>
public static class ScopeAuthorization
{
    public const string MissingScopeItem = "medserve.missing-scope";

    public static IServiceCollection AddScopeAuthorization(this IServiceCollection services)
    {
        services.AddSingleton<IAuthorizationHandler, ScopeHandler>();
        services.AddSingleton<IAuthorizationMiddlewareResultHandler, ScopeResultHandler>();
        services.AddAuthorizationBuilder()
            .SetFallbackPolicy(Policy(Scopes.Admin))
            .AddPolicy(Scopes.Infer, Policy(Scopes.Infer))
            .AddPolicy(Scopes.ModelsRead, Policy(Scopes.ModelsRead))
            .AddPolicy(Scopes.ModelsWrite, Policy(Scopes.ModelsWrite))
            .AddPolicy(Scopes.AuditRead, Policy(Scopes.AuditRead))
            .AddPolicy(Scopes.PredictionsRead, Policy(Scopes.PredictionsRead))
            .AddPolicy(Scopes.OutcomesWrite, Policy(Scopes.OutcomesWrite))
            .AddPolicy(Scopes.Admin, Policy(Scopes.Admin))
            .AddPolicy(Scopes.AnyCredential, new AuthorizationPolicyBuilder(BearerAuthenticationHandler.SchemeName).RequireAuthenticatedUser().Build());
        return services;
    }

    /// <summary>The scope an endpoint requires: its policy, <c>admin</c> by fallback, or null when it is open.</summary>
    public static string? RequiredScope(Endpoint? endpoint)
    {
        if (endpoint is null)
        {
            return Scopes.Admin;
        }

        if (endpoint.Metadata.GetMetadata<IAllowAnonymous>() is not null)
        {
            return null;
        }

        return endpoint.Metadata.GetMetadata<IAuthorizeData>()?.Policy ?? Scopes.Admin;
    }

    private static AuthorizationPolicy Policy(string scope) => new AuthorizationPolicyBuilder(BearerAuthenticationHandler.SchemeName)
        .RequireAuthenticatedUser()
        .AddRequirements(new ScopeRequirement(scope))
        .Build();

    private sealed class ScopeHandler : AuthorizationHandler<ScopeRequirement>
    {
        protected override Task HandleRequirementAsync(AuthorizationHandlerContext context, ScopeRequirement requirement)
        {
            var model = (context.Resource as HttpContext)?.Request.RouteValues["model"] as string;
            if (Scopes.Grants(context.User, requirement.Scope, requirement.Scope == Scopes.Infer ? model : null))
            {
                context.Succeed(requirement);
            }

            return Task.CompletedTask;
        }
    }

    /// <summary>Tells a forbidden caller which scope it lacks.</summary>
    private sealed class ScopeResultHandler : IAuthorizationMiddlewareResultHandler
    {
        private readonly AuthorizationMiddlewareResultHandler _default = new();

        public Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
        {
            if (authorizeResult.Forbidden && authorizeResult.AuthorizationFailure?.FailedRequirements.OfType<ScopeRequirement>().FirstOrDefault() is { } missing)
            {
                var properties = new AuthenticationProperties();
                properties.Items[MissingScopeItem] = missing.Scope;
                return context.ForbidAsync(BearerAuthenticationHandler.SchemeName, properties);
            }

            return _default.HandleAsync(next, context, policy, authorizeResult);
        }
    }
}
