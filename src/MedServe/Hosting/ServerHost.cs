using System.Net;
using MedServe.Backends;
using MedServe.Grpc;
using MedServe.Registry;
using MedServe.Registry.Artifacts;
using MedServe.Registry.Serving;
using MedServe.Registry.Sources;
using MedServe.Registry.Store;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using MedServe.Http;
using MedServe.Lifecycle;
using MedServe.Onnx;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace MedServe.Hosting;

/// <summary>Wires the server: configuration, services, Kestrel, routes. It decides nothing else.</summary>
public static class ServerHost
{
    /// <param name="overrides">Settings from the command line (or a test), above appsettings.json and MEDSERVE_* variables.</param>
    public static WebApplication Build(IDictionary<string, string?> overrides)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Configuration.AddJsonFile("appsettings.json", optional: true);
        builder.Configuration.AddInMemoryCollection(EnvironmentConfiguration.Read(Environment.GetEnvironmentVariables()));
        builder.Configuration.AddInMemoryCollection(overrides);

        var section = builder.Configuration.GetSection(ServerOptions.Section);
        var server = section.Get<ServerOptions>() ?? new ServerOptions();
        builder.Services.AddMedServe(section, server);

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = section.GetSection("Http").Get<HttpFrontendOptions>()?.MaxRequestBodyBytes
                ?? new HttpFrontendOptions().MaxRequestBodyBytes;
            var certificate = server.Tls.Enabled ? LoadCertificate(server.Tls) : null;
            kestrel.Listen(ParseHost(server.Host), server.HttpPort, listen =>
            {
                if (certificate is not null)
                {
                    listen.Protocols = HttpProtocols.Http1AndHttp2;
                    listen.UseHttps(certificate);
                }
            });

            // gRPC clients (tritonclient.grpc) speak HTTP/2, without TLS unless it is configured: a port of its own.
            kestrel.Listen(ParseHost(server.Host), server.GrpcPort, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                if (certificate is not null)
                {
                    listen.UseHttps(certificate);
                }
            });
        });

        var app = builder.Build();
        if (server.Tls.Enabled)
        {
            // HSTS: browsers and clients that honour it stay on HTTPS for a year.
            app.Use((context, next) =>
            {
                context.Response.Headers.StrictTransportSecurity = "max-age=31536000";
                return next(context);
            });
        }

        app.MapOpenInferenceProtocol();
        app.MapGrpcService<InferenceGrpcService>();
        return app;
    }

    public static IServiceCollection AddMedServe(this IServiceCollection services, IConfigurationSection section, ServerOptions server)
    {
        services.Configure<ServerOptions>(section);
        services.Configure<OnnxOptions>(section.GetSection("Onnx"));
        services.Configure<HttpFrontendOptions>(section.GetSection("Http"));
        services.Configure<ModelRepositoryOptions>(section.GetSection("Repository"));
        services.Configure<MedServe.Statistics.MetricsOptions>(section.GetSection("Metrics"));
        services.PostConfigure<ModelRepositoryOptions>(o => o.Path = server.ResolvedModelRepository);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IModelBackend, OnnxBackend>());
        services.TryAddSingleton<ModelManager>();

        // The registry: SQLite and content-addressed artifacts in the data dir.
        services.TryAddSingleton<IRegistryStore>(sp =>
            SqliteRegistryStore.OpenAsync(Path.Combine(server.ResolvedDataDir, "registry.db"), sp.GetRequiredService<TimeProvider>()).GetAwaiter().GetResult());
        services.TryAddSingleton(_ => new ArtifactStore(Path.Combine(server.ResolvedDataDir, "artifacts")));
        services.TryAddSingleton(sp => new ModelRegistry(
            sp.GetRequiredService<IRegistryStore>(), sp.GetRequiredService<ArtifactStore>(), sp.GetServices<IModelBackend>().First()));
        var sources = section.GetSection("Registry").Get<RegistrySourceOptions>() ?? new RegistrySourceOptions();
        services.TryAddSingleton(_ => new SourceFetcher(sources, new HttpClient { Timeout = TimeSpan.FromMinutes(5) }));
        services.TryAddSingleton(sp => new ServingReconciler(
            sp.GetRequiredService<IRegistryStore>(), sp.GetRequiredService<ArtifactStore>(), sp.GetRequiredService<ModelManager>(),
            sp.GetRequiredService<ILogger<ServingReconciler>>()));
        services.AddHostedService<ModelRepositoryService>();

        // Shutdown waits for the model queues to drain: give the host the drain time and a margin.
        var drain = section.GetSection("Repository").Get<ModelRepositoryOptions>()?.DrainTimeout ?? new ModelRepositoryOptions().DrainTimeout;
        services.Configure<HostOptions>(host => host.ShutdownTimeout = drain + TimeSpan.FromSeconds(5));
        services.AddGrpc(grpc =>
        {
            grpc.MaxReceiveMessageSize = (int)Math.Min(int.MaxValue, section.GetSection("Http").Get<HttpFrontendOptions>()?.MaxRequestBodyBytes ?? new HttpFrontendOptions().MaxRequestBodyBytes);
            grpc.MaxSendMessageSize = null;
        });
        return services;
    }

    private static System.Security.Cryptography.X509Certificates.X509Certificate2 LoadCertificate(TlsOptions tls)
    {
        try
        {
            return System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(tls.CertificatePath!, tls.KeyPath);
        }
        catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or IOException)
        {
            throw new OptionsValidationException(ServerOptions.Section, typeof(TlsOptions),
                [$"TLS: cannot load the certificate '{tls.CertificatePath}' with the key '{tls.KeyPath}': {e.Message}"]);
        }
    }

    private static IPAddress ParseHost(string host) => host switch
    {
        "localhost" => IPAddress.Loopback,
        "*" or "+" => IPAddress.Any,
        _ => IPAddress.TryParse(host, out var address)
            ? address
            : throw new OptionsValidationException(ServerOptions.Section, typeof(ServerOptions), [$"Host '{host}' is not an IP address"]),
    };
}
