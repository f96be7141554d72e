using System.Runtime.CompilerServices;
using System.Security.Claims;
using System.Text.Encodings.Web;
using MedServe.Compliance.Access;
using MedServe.Http.V2;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Options;

namespace MedServe.Security;

/// <summary>
/// <c>Authorization: Bearer &lt;credential&gt;</c> on REST and as gRPC metadata. A MedServe API key
/// (<c>ms_...</c>) is checked against the key store; anything else is handed to the JWT bearer
/// handler when an issuer is configured. Either way the principal carries the same claims: a name
/// (<c>key:&lt;name&gt;</c> or <c>jwt:&lt;sub&gt;</c>) and one <see cref="Scopes.ClaimType"/> claim per scope.
/// With authentication switched off (loopback only), everyone is the local administrator.
/// </summary>
public sealed class BearerAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    ApiKeyStore keys,
    IOptions<Hosting.ServerOptions> server) : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "MedServe";
    public const string JwtSchemeName = "Jwt";

    /// <summary>Requests per second this principal may make, when its key sets a limit.</summary>
    public const string RateClaimType = "medserve:rate";

    private static readonly ClaimsPrincipal LocalAdministrator = Principal("local", [Scopes.Admin], null);
    private static readonly ConditionalWeakTable<ApiKeyInfo, ClaimsPrincipal> KeyPrincipals = new();

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var auth = server.Value.Auth;
        if (!auth.Enabled)
        {
            return Success(LocalAdministrator);
        }

        string? header = Request.Headers.Authorization;
        if (string.IsNullOrEmpty(header))
        {
            return AuthenticateResult.NoResult();
        }

        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return AuthenticateResult.Fail("the Authorization header must be 'Bearer <API key or token>'");
        }

        var credential = header.AsSpan(7).Trim();
        if (credential.StartsWith("ms_", StringComparison.Ordinal))
        {
            var key = await keys.AuthenticateAsync(credential.ToString()).ConfigureAwait(false);
            return key is null
                ? AuthenticateResult.Fail("the API key is unknown, expired or revoked")
                : Success(KeyPrincipals.GetValue(key, k => Principal("key:" + k.Name, k.Scopes.Where(Scopes.IsValid), k.RequestsPerSecond)));
        }

        if (!auth.Jwt.Enabled)
        {
            return AuthenticateResult.Fail("the bearer credential is not a MedServe API key (ms_...) and no token issuer is configured");
        }

        var token = await Context.AuthenticateAsync(JwtSchemeName).ConfigureAwait(false);
        if (!token.Succeeded)
        {
            return AuthenticateResult.Fail("the bearer token is not valid" + (token.Failure is { } f ? $": {f.Message}" : ""));
        }

        var subject = token.Principal.FindFirst("sub")?.Value ?? token.Principal.Identity?.Name ?? "unknown";
        var scopes = token.Principal.FindAll(auth.Jwt.ScopeClaim)
            .SelectMany(c => c.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(Scopes.IsValid)
            .Distinct(StringComparer.Ordinal)
            .ToList();
        return Success(Principal("jwt:" + subject, scopes, null));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        // The result of this request's authentication, computed once and remembered by the base class.
        var result = await HandleAuthenticateOnceSafeAsync().ConfigureAwait(false);
        Response.Headers.WWWAuthenticate = "Bearer";
        await Deny(StatusCodes.Status401Unauthorized, result.Failure?.Message
            ?? "authentication required: send 'Authorization: Bearer <API key or token>'").ConfigureAwait(false);
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        Deny(StatusCodes.Status403Forbidden, properties.Items.TryGetValue(ScopeAuthorization.MissingScopeItem, out var scope)
            ? $"the credential lacks the scope '{scope}'"
            : "the credential is not allowed this request");

    /// <summary>gRPC clients read the HTTP status (401 is UNAUTHENTICATED, 403 PERMISSION_DENIED); REST clients get a JSON error too.</summary>
    private Task Deny(int status, string message)
    {
        if (Request.ContentType?.StartsWith("application/grpc", StringComparison.Ordinal) == true)
        {
            Response.StatusCode = status;
            return Task.CompletedTask;
        }

        return ApiResponses.WriteErrorAsync(Response, status, message);
    }

    private AuthenticateResult Success(ClaimsPrincipal principal) =>
        AuthenticateResult.Success(new AuthenticationTicket(principal, Scheme.Name));

    private static ClaimsPrincipal Principal(string name, IEnumerable<string> scopes, int? requestsPerSecond)
    {
        var claims = new List<Claim> { new(ClaimTypes.Name, name) };
        claims.AddRange(scopes.Select(s => new Claim(Scopes.ClaimType, s)));
        if (requestsPerSecond is { } rate)
        {
            claims.Add(new Claim(RateClaimType, rate.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        return new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName));
    }
}
