using MedServe.Telemetry;
using System.Net;
using MedServe.Backends;
using MedServe.Compliance.Access;
using MedServe.Grpc;
using MedServe.Http;
using MedServe.Http.Admin;
using MedServe.Lifecycle;
using MedServe.Logging;
using MedServe.Onnx;
using MedServe.Registry;
using MedServe.Registry.Artifacts;
using MedServe.Registry.Serving;
using MedServe.Registry.Sources;
using MedServe.Registry.Store;
using MedServe.Storage;
using MedServe.Security;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace MedServe.Hosting;

/// <summary>Wires the server: configuration, services, Kestrel, routes. It decides nothing else.</summary>
public static class ServerHost
{
    /// <param name="overrides">Settings from the command line (or a test), above appsettings.json and MEDSERVE_* variables.</param>
    /// <param name="configure">A test's last word on the builder (extra log sinks); redaction still applies to them.</param>
    public static WebApplication Build(IDictionary<string, string?> overrides, Action<WebApplicationBuilder>? configure = null)
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
        var address = ParseHost(server.Host);
        SecurityServices.RefuseUnsafeBinding(server, address);
        builder.Services.AddMedServe(section, server);
        builder.Services.AddMedServeSecurity(server);

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;

            // Hard backstops well above the limits the header middleware answers with a JSON error.
            kestrel.Limits.MaxRequestHeaderCount = Math.Max(100, 4 * server.Limits.MaxRequestHeaderCount);
            kestrel.Limits.MaxRequestHeadersTotalSize = Math.Max(32 * 1024, 4 * server.Limits.MaxRequestHeadersBytes);
            kestrel.Limits.MaxRequestBodySize = section.GetSection("Http").Get<HttpFrontendOptions>()?.MaxRequestBodyBytes
                ?? new HttpFrontendOptions().MaxRequestBodyBytes;
            var certificate = server.Tls.Enabled ? LoadCertificate(server.Tls) : null;
            kestrel.Listen(address, server.HttpPort, listen =>
            {
                if (certificate is not null)
                {
                    listen.Protocols = HttpProtocols.Http1AndHttp2;
                    listen.UseHttps(certificate);
                }
            });

            // gRPC clients (tritonclient.grpc) speak HTTP/2, without TLS unless it is configured: a port of its own.
            kestrel.Listen(address, server.GrpcPort, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                if (certificate is not null)
                {
                    listen.UseHttps(certificate);
                }
            });
        });

        configure?.Invoke(builder);
        LogRedaction.Apply(builder.Services);

        // Taken last, so a start that fails above leaves no lock behind; the container releases it on dispose.
        DataDirPrivacy.Apply(server.ResolvedDataDir);
        var dataDirLock = DataDirLock.Acquire(server.ResolvedDataDir, server.DataDir);
        builder.Services.AddSingleton(_ => dataDirLock);
        var app = builder.Build();
        app.Services.GetRequiredService<DataDirLock>();
        try
        {
            // Now, not at the first use: a master key that cannot be read stops the start.
            app.Services.GetRequiredService<MedServe.Compliance.Encryption.EnvelopeEncryption>();

            // And the stores: a database that cannot be reached or is newer than this build stops it too.
            app.Services.GetRequiredService<IRegistryStore>();

            // Redis connects in the background; one that is down is warned of here, not fatal.
            app.Services.GetService<SharedRedis>();

            // The journal too: its key, its tail against the anchor and the cut-over from audit.db are checked at start.
            if (server.Audit.Enabled)
            {
                app.Services.GetRequiredService<MedServe.Compliance.Journal.AuditJournal>();
            }
        }
        catch (StoreException e)
        {
            dataDirLock.Dispose();
            throw new OptionsValidationException(ServerOptions.Section, typeof(StoreOptions), [$"Store: {e.Message}"]);
        }
        catch (System.Security.Cryptography.CryptographicException e)
        {
            dataDirLock.Dispose();
            throw new OptionsValidationException(ServerOptions.Section, typeof(EncryptionOptions), [$"Encryption: {e.Message}"]);
        }
        catch (OptionsValidationException)
        {
            dataDirLock.Dispose();
            throw;
        }

        AnnounceAdminKey(app, server);
        if (server.Tls.Enabled)
        {
            // HSTS: browsers and clients that honour it stay on HTTPS for a year.
            app.Use((context, next) =>
            {
                context.Response.Headers.StrictTransportSecurity = "max-age=31536000";
                return next(context);
            });
        }

        app.UseMiddleware<MedServe.Telemetry.RequestTelemetryMiddleware>();
        app.UseMedServeSecurity(server);
        app.MapOpenInferenceProtocol();
        app.MapKeysApi();
        app.MapAuditApi();
        app.MapPredictionsApi();
        app.MapStatisticsApi();
        MedServe.Outcomes.OutcomesApi.MapOutcomesApi(app);
        MedServe.Drift.DriftApi.MapDriftApi(app);
        MedServe.Alerts.AlertsApi.MapAlertsApi(app);
        MedServe.Reports.ReportApi.MapReportApi(app);
        MedServe.Experiments.ExperimentsApi.MapExperimentsApi(app);

        // A gRPC message buffered until whole is counted in flight as its bytes arrive, as REST bodies are.
        app.UseGrpcBodyAccounting();

        // gRPC calls carry their own deadlines; streams must outlive the REST timeout.
        app.MapGrpcService<InferenceGrpcService>().DisableRequestTimeout();
        return app;
    }

    /// <summary>On first start the admin key is created and shown once; every start says where it is.</summary>
    private static void AnnounceAdminKey(WebApplication app, ServerOptions server)
    {
        var secrets = app.Services.GetRequiredService<ServerSecrets>();
        var adminKeyFile = server.Auth.AdminKeyFile is { Length: > 0 } file ? Path.GetFullPath(file) : null;
        string? created;
        try
        {
            created = secrets.EnsureAdminKeyAsync(app.Services.GetRequiredService<ApiKeyStore>(), adminKeyFile).GetAwaiter().GetResult();
        }
        catch (InvalidOperationException e)
        {
            throw new OptionsValidationException(ServerOptions.Section, typeof(AuthOptions), [e.Message]);
        }

        if (!server.Auth.Enabled)
        {
            Console.WriteLine("MedServe: authentication is OFF (MedServe:Auth:Enabled=false); only loopback clients can reach this server.");
        }
        else if (created is not null)
        {
            // Straight to the terminal, not to a log sink: a key must not end up in collected logs.
            Console.WriteLine($"MedServe: created the admin API key (shown once; also in {secrets.AdminKeyPath}, mode 0600):");
            Console.WriteLine($"  {created}");
            Console.WriteLine($"  Send it as 'Authorization: Bearer <key>'. Make narrower keys with: medserve keys create --name <name> --scopes infer");
        }
        else if (File.Exists(secrets.AdminKeyPath))
        {
            Console.WriteLine($"MedServe: the admin API key is in {secrets.AdminKeyPath}");
        }
        else if (adminKeyFile is not null)
        {
            Console.WriteLine("MedServe: the admin API key is the one in Auth:AdminKeyFile (installed when the key store was empty)");
        }
        else
        {
            Console.WriteLine("MedServe: keys exist in the shared store; the admin key is in the admin.key of the replica that created it");
        }
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
        services.TryAddSingleton<MedServe.Statistics.FrontendLatency>();
        services.AddMedServeTelemetry(section.GetSection("Telemetry").Get<MedServe.Telemetry.TelemetryOptions>() ?? new MedServe.Telemetry.TelemetryOptions());
        services.TryAddSingleton(new MedServe.Buffers.InFlightBytes(server.Limits.MaxInFlightRequestBytes));

        if (server.Predictions.Problem() is { } retentionProblem)
        {
            throw new OptionsValidationException(ServerOptions.Section, typeof(MedServe.Predictions.PredictionsOptions), [retentionProblem]);
        }

        // Shared state: SQLite files in the data dir by default, or one PostgreSQL database for every replica.
        if (server.Store.Problem() is { } storeProblem)
        {
            throw new OptionsValidationException(ServerOptions.Section, typeof(StoreOptions), [storeProblem]);
        }

        if (server.Redis.Problem() is { } redisProblem)
        {
            throw new OptionsValidationException(ServerOptions.Section, typeof(RedisOptions), [redisProblem]);
        }

        if (server.Store.Notifications == ChangeNotifications.Redis && !server.Redis.Enabled)
        {
            throw new OptionsValidationException(ServerOptions.Section, typeof(StoreOptions),
                ["Store:Notifications is redis but Redis:ConnectionString is empty: set it, or use postgres or poll"]);
        }

        if (server.Redis.Enabled)
        {
            services.TryAddSingleton(sp => SharedRedis.Connect(server.Redis, sp.GetRequiredService<ILogger<SharedRedis>>()));
        }

        services.TryAddSingleton<ChangeFeed>();
        services.TryAddSingleton<LeaderElection>();
        services.TryAddSingleton(sp => new StoreDatabases(server.Store, server.ResolvedDataDir, sp.GetRequiredService<ChangeFeed>(), sp.GetRequiredService<TimeProvider>()));
        services.TryAddSingleton<SharedStateService>();
        services.AddHostedService(sp => sp.GetRequiredService<SharedStateService>());
        services.AddSingleton<MedServe.Diagnostics.IMetricsContributor>(sp => sp.GetRequiredService<SharedStateService>());

        // The registry, and content-addressed artifacts in the data dir.
        services.TryAddSingleton<IRegistryStore>(sp =>
            RegistryStore.OpenAsync(sp.GetRequiredService<StoreDatabases>().For("registry.db"), sp.GetRequiredService<TimeProvider>()).GetAwaiter().GetResult());
        // With Store:ArtifactsBlob the folder is this replica's cache of the blob container (created at start when missing).
        AzureBlobArtifactStore? blobs = null;
        if (server.Store.ArtifactsBlob.Enabled)
        {
            try
            {
                blobs = AzureBlobArtifactStore.Create(server.Store.ArtifactsBlob);
            }
            catch (ArtifactObjectStoreException e)
            {
                throw new OptionsValidationException(ServerOptions.Section, typeof(ArtifactsBlobOptions), [e.Message]);
            }
        }

        services.TryAddSingleton(sp =>
        {
            blobs?.EnsureContainerAsync().GetAwaiter().GetResult();
            var root = server.Store.ArtifactsPath is { Length: > 0 } shared ? Path.GetFullPath(shared) : Path.Combine(server.ResolvedDataDir, "artifacts");
            return new ArtifactStore(root, blobs, sp.GetRequiredService<ILogger<ArtifactStore>>());
        });
        services.AddHostedService<ArtifactBackfillService>();
        services.Configure<MedServe.Alerts.AlertOptions>(section.GetSection("Alerts"));
        services.TryAddSingleton<MedServe.Alerts.IAlertStore>(sp =>
            MedServe.Alerts.AlertStore.OpenAsync(sp.GetRequiredService<StoreDatabases>().For("alerts.db"), sp.GetRequiredService<TimeProvider>()).GetAwaiter().GetResult());
        services.TryAddSingleton<MedServe.Alerts.MonitoredFigures>();
        services.TryAddSingleton<MedServe.Reports.ModelReport>();
        // Experiments' intent and history live in the registry's database, beside the aliases they route among.
        services.TryAddSingleton<MedServe.Experiments.IExperimentStore>(sp =>
        {
            sp.GetRequiredService<IRegistryStore>();
            return MedServe.Experiments.ExperimentStore.OpenAsync(sp.GetRequiredService<StoreDatabases>().For("registry.db"), sp.GetRequiredService<TimeProvider>()).GetAwaiter().GetResult();
        });
        services.TryAddSingleton<MedServe.Experiments.ExperimentRouter>();
        services.TryAddSingleton<MedServe.Experiments.ExperimentService>();
        services.TryAddSingleton<MedServe.Experiments.ExperimentReport>();
        services.TryAddSingleton<MedServe.Experiments.RolloutController>();
        services.AddHostedService(sp => sp.GetRequiredService<MedServe.Experiments.RolloutController>());
        services.TryAddSingleton<MedServe.Alerts.WebhookSender>();
        services.AddHostedService(sp => sp.GetRequiredService<MedServe.Alerts.WebhookSender>());
        services.TryAddSingleton<MedServe.Alerts.AlertEvaluator>();
        services.AddHostedService(sp => sp.GetRequiredService<MedServe.Alerts.AlertEvaluator>());
        services.TryAddSingleton<MedServe.Drift.IDriftReferenceStore>(sp =>
            MedServe.Drift.DriftReferenceStore.OpenAsync(sp.GetRequiredService<StoreDatabases>().For("drift.db"), sp.GetRequiredService<TimeProvider>()).GetAwaiter().GetResult());
        var sources = section.GetSection("Registry").Get<RegistrySourceOptions>() ?? new RegistrySourceOptions();
        services.TryAddSingleton(sp => new ModelRegistry(
            sp.GetRequiredService<IRegistryStore>(), sp.GetRequiredService<ArtifactStore>(), sp.GetServices<IModelBackend>().First())
        { MaxArtifactBytes = sources.MaxArtifactBytes });
        services.TryAddSingleton(_ => new SourceFetcher(sources));
        services.TryAddSingleton(sp => new ServingReconciler(
            sp.GetRequiredService<IRegistryStore>(), sp.GetRequiredService<ArtifactStore>(), sp.GetRequiredService<ModelManager>(),
            sp.GetRequiredService<ILogger<ServingReconciler>>(), time: sp.GetRequiredService<TimeProvider>()));
        services.AddHostedService<ModelRepositoryService>();

        // Shutdown waits for the model queues to drain: give the host the drain time and a margin.
        var drain = section.GetSection("Repository").Get<ModelRepositoryOptions>()?.DrainTimeout ?? new ModelRepositoryOptions().DrainTimeout;
        services.Configure<HostOptions>(host => host.ShutdownTimeout = drain + TimeSpan.FromSeconds(5));
        services.AddGrpc(grpc =>
        {
            grpc.Interceptors.Add<AuditGrpcInterceptor>();
            // grpc-dotnet buffers a whole message before it is handed over: this bounds each one
            // (before a byte is allocated for it, from the length prefix), as the REST body limit does.
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
