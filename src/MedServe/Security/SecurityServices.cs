using System.Net;
using System.Security.Cryptography;
using MedServe.Compliance.Access;
using MedServe.Compliance.Audit;
using MedServe.Compliance.Journal;
using MedServe.Hosting;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;

namespace MedServe.Security;

/// <summary>Audited routes need a journal that writes: readiness says so while it cannot.</summary>
internal sealed class JournalReadiness(AuditJournal journal) : MedServe.Lifecycle.IReadinessCondition
{
    public string? NotReadyReason => journal.Failure ?? journal.Writer?.LastWriteError;
}

/// <summary>Wires authentication, scopes, the audit trail and the limits; and refuses an unsafe start.</summary>
public static class SecurityServices
{
    public static IServiceCollection AddMedServeSecurity(this IServiceCollection services, ServerOptions server)
    {
        var secrets = new ServerSecrets(server.ResolvedDataDir);
        services.AddSingleton(secrets);
        services.AddSingleton(sp => ApiKeyStore.OpenAsync(sp.GetRequiredService<MedServe.Storage.StoreDatabases>().For("keys.db"), sp.GetRequiredService<TimeProvider>()).GetAwaiter().GetResult());
        services.AddSingleton(_ => new Pseudonymizer(secrets.PseudonymSecret()));

        // The one way stored patient data is encrypted (prediction logs, outcomes, caches in later features).
        services.AddSingleton(_ => new MedServe.Compliance.Encryption.EnvelopeEncryption(secrets.MasterKeys(server.Encryption)));
        services.AddSingleton(new MedServe.Predictions.PredictionCapture(server.Journal.MaxInputBytes));
        services.AddSingleton(sp => JournalStartup.Open(server, secrets, sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILoggerFactory>()));
        services.AddSingleton<AuditTrail>();

        // The prediction log's queryable projection, built from the journal behind the writer.
        // One SQLite file per data dir, or the shared PostgreSQL (each replica projecting its own journal under its own number).
        services.AddSingleton<MedServe.Compliance.Predictions.IPredictionStore>(sp =>
        {
            var databases = sp.GetRequiredService<MedServe.Storage.StoreDatabases>();
            return databases.Provider == MedServe.Storage.StoreProvider.Postgres
                ? MedServe.Compliance.Predictions.PostgresPredictionStore.OpenAsync(databases.For("predictions.db"), ReplicaIdentity.Of(server.ResolvedDataDir)).GetAwaiter().GetResult()
                : MedServe.Compliance.Predictions.SqlitePredictionStore.OpenAsync(Path.Combine(server.ResolvedDataDir, "predictions.db")).GetAwaiter().GetResult();
        });
        services.AddSingleton<MedServe.Predictions.PredictionProjectionService>();
        services.AddHostedService(sp => sp.GetRequiredService<MedServe.Predictions.PredictionProjectionService>());
        services.AddSingleton<MedServe.Predictions.PredictionRetentionService>();
        services.AddHostedService(sp => sp.GetRequiredService<MedServe.Predictions.PredictionRetentionService>());
        services.AddHostedService<JournalArchiveService>();
        services.AddHostedService<JournalHeadPublisher>();
        if (server.Audit.Enabled)
        {
            services.AddSingleton<MedServe.Lifecycle.IReadinessCondition>(sp => new JournalReadiness(sp.GetRequiredService<AuditJournal>()));
        }

        services.AddSingleton<AuditGrpcInterceptor>();

        var authentication = services.AddAuthentication(BearerAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, BearerAuthenticationHandler>(BearerAuthenticationHandler.SchemeName, null);
        if (server.Auth.Jwt.Enabled)
        {
            RefuseUnvalidatedJwt(server.Auth.Jwt);

            // Read the key now: a missing or unreadable key stops the start, not the first request.
            var signingKey = string.IsNullOrEmpty(server.Auth.Jwt.SigningKeyPath) ? null : LoadPublicKey(server.Auth.Jwt.SigningKeyPath);
            authentication.AddJwtBearer(BearerAuthenticationHandler.JwtSchemeName, jwt => ConfigureJwt(jwt, server.Auth.Jwt, signingKey));
        }

        services.AddScopeAuthorization();
        services.AddRequestLimits(server.Limits);
        return services;
    }

    /// <summary>
    /// Order matters: limits on headers first, then the address's refusals (before any credential
    /// is looked at), who is calling, their rate (so a 429 costs no journal record), the journal
    /// hook, what they may do, and the clock.
    /// </summary>
    public static WebApplication UseMedServeSecurity(this WebApplication app, ServerOptions server)
    {
        app.UseHeaderLimits(server.Limits);
        app.UseRouting();
        app.UseAddressRefusalLimit(server.Limits);
        app.UseAuthentication();
        app.UseRateLimiter();
        app.UseMiddleware<AuditMiddleware>();
        app.UseAuthorization();
        app.UseRequestTimeouts();
        return app;
    }

    /// <summary>
    /// Patient data must not cross a network in clear text or unauthenticated: any address but
    /// loopback needs TLS and authentication.
    /// </summary>
    public static void RefuseUnsafeBinding(ServerOptions server, IPAddress address)
    {
        if (IPAddress.IsLoopback(address))
        {
            return;
        }

        var missing = new List<string>();
        if (!server.Tls.Enabled)
        {
            missing.Add("TLS is off (set MedServe:Tls:CertificatePath and MedServe:Tls:KeyPath, or MEDSERVE_TLS__CERTIFICATE_PATH and MEDSERVE_TLS__KEY_PATH)");
        }

        if (!server.Auth.Enabled)
        {
            missing.Add("authentication is off (remove MedServe:Auth:Enabled=false)");
        }

        if (!server.Audit.Enabled)
        {
            missing.Add("auditing is off (remove MedServe:Audit:Enabled=false)");
        }

        if (missing.Count > 0)
        {
            throw new OptionsValidationException(ServerOptions.Section, typeof(ServerOptions),
                [$"refusing to listen on {address}, which is not a loopback address, because {string.Join(" and ", missing)}. Fix that, or listen on 127.0.0.1 (--host 127.0.0.1)."]);
        }
    }

    /// <summary>
    /// A signature alone says only that someone holding the key signed: without an issuer and an
    /// audience to check, a token the identity provider minted for any other application would do.
    /// </summary>
    public static void RefuseUnvalidatedJwt(JwtOptions jwt)
    {
        var problems = new List<string>();
        if (string.IsNullOrEmpty(jwt.Issuer) && string.IsNullOrEmpty(jwt.Authority))
        {
            problems.Add("no issuer to validate tokens against: set MedServe:Auth:Jwt:Issuer (MEDSERVE_AUTH__JWT__ISSUER) to the tokens' 'iss', or MedServe:Auth:Jwt:Authority");
        }

        if (string.IsNullOrEmpty(jwt.Audience) && !jwt.AllowAnyAudience)
        {
            problems.Add("no audience to validate tokens against: set MedServe:Auth:Jwt:Audience (MEDSERVE_AUTH__JWT__AUDIENCE) to the tokens' 'aud', "
                + "or MedServe:Auth:Jwt:AllowAnyAudience=true if this issuer mints tokens for this server only");
        }
        else if (!string.IsNullOrEmpty(jwt.Audience) && jwt.AllowAnyAudience)
        {
            problems.Add("MedServe:Auth:Jwt:Audience and MedServe:Auth:Jwt:AllowAnyAudience=true contradict each other: keep one");
        }

        if (problems.Count > 0)
        {
            throw new OptionsValidationException(ServerOptions.Section, typeof(JwtOptions),
                [$"refusing to start with JWT bearer tokens enabled: {string.Join("; and ", problems)}."]);
        }
    }

    /// <summary>How far token times may be off: the clocks of a hospital network, not five minutes of a stolen token.</summary>
    internal static readonly TimeSpan JwtClockSkew = TimeSpan.FromSeconds(30);

    private static void ConfigureJwt(JwtBearerOptions jwt, JwtOptions options, SecurityKey? signingKey)
    {
        jwt.MapInboundClaims = false;
        jwt.Authority = options.Authority;
        jwt.Audience = options.Audience;
        jwt.TokenValidationParameters = new TokenValidationParameters
        {
            // The start was refused without an issuer, and without an audience unless AllowAnyAudience says so.
            ValidateIssuer = true,
            ValidIssuer = options.Issuer,
            ValidateAudience = !options.AllowAnyAudience,
            ValidAudience = options.Audience,
            ValidateLifetime = true,
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            ValidateIssuerSigningKey = true,
            ClockSkew = JwtClockSkew,

            // Public-key signatures only: no "none", no HMAC keyed with something public.
            ValidAlgorithms =
            [
                SecurityAlgorithms.RsaSha256, SecurityAlgorithms.RsaSha384, SecurityAlgorithms.RsaSha512,
                SecurityAlgorithms.RsaSsaPssSha256, SecurityAlgorithms.RsaSsaPssSha384, SecurityAlgorithms.RsaSsaPssSha512,
                SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.EcdsaSha384, SecurityAlgorithms.EcdsaSha512,
            ],
            NameClaimType = "sub",
        };
        if (signingKey is not null)
        {
            jwt.TokenValidationParameters.IssuerSigningKey = signingKey;
        }
    }

    /// <summary>An RSA or EC public key in PEM.</summary>
    private static SecurityKey LoadPublicKey(string path)
    {
        string pem;
        try
        {
            pem = File.ReadAllText(path);
        }
        catch (IOException e)
        {
            throw new OptionsValidationException(ServerOptions.Section, typeof(JwtOptions), [$"Auth:Jwt:SigningKeyPath: cannot read '{path}': {e.Message}"]);
        }

        try
        {
            var rsa = RSA.Create();
            rsa.ImportFromPem(pem);
            return new RsaSecurityKey(rsa);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            // Not RSA: EC, or neither.
        }

        try
        {
            var ec = ECDsa.Create();
            ec.ImportFromPem(pem);
            return new ECDsaSecurityKey(ec);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            throw new OptionsValidationException(ServerOptions.Section, typeof(JwtOptions), [$"Auth:Jwt:SigningKeyPath: '{path}' holds no RSA or EC public key in PEM"]);
        }
    }
}
