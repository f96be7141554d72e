using System.Net.Http.Headers;
using MedServe.Hosting;
using MedServe.Samples;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace MedServe.IntegrationTests.Support;

/// <summary>
/// A real MedServe in this process on free loopback ports, with a data dir of its own. The shared
/// fixture is one; tests that need settings it must not have (JWT issuers, tiny limits, a broken
/// audit store, a log capture) start their own, by default with the risk sample only.
/// </summary>
public sealed class RunningServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private readonly bool _ownsRoot;

    private RunningServer(WebApplication app, string root, bool ownsRoot)
    {
        _app = app;
        Root = root;
        _ownsRoot = ownsRoot;
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.ToList();
        HttpAddress = new Uri(addresses[0]);
        GrpcAddress = new Uri(addresses[1]);
        // Empty when the admin key came from Auth:AdminKeyFile (then it is written nowhere in the data dir).
        var adminKey = Path.Combine(root, "admin.key");
        AdminKey = File.Exists(adminKey) ? File.ReadAllText(adminKey).Trim() : "";
    }

    public string Root { get; }

    public Uri HttpAddress { get; }

    public Uri GrpcAddress { get; }

    public string AdminKey { get; }

    public IServiceProvider Services => _app.Services;

    public string Repository => Path.Combine(Root, "models");

    /// <param name="settings">Above the defaults here: free ports, this data dir, no sample provisioning, warnings only.</param>
    /// <param name="configure">The builder's last word (extra log sinks).</param>
    /// <param name="provision">Writes the models into the repository folder; the risk sample when null.</param>
    /// <param name="root">A data dir the caller owns and deletes (a restart on the same files); a new one, deleted on dispose, when null.</param>
    public static async Task<RunningServer> StartAsync(IDictionary<string, string?> settings, Action<WebApplicationBuilder>? configure = null, Action<string>? provision = null, string? root = null)
    {
        var ownsRoot = root is null;
        root ??= Path.Combine(Path.GetTempPath(), "medserve-own-" + Guid.NewGuid().ToString("N"));
        var repository = Path.Combine(root, "models");
        if (!Directory.Exists(repository))
        {
            (provision ?? SampleModels.ProvisionRisk)(repository);
        }
        var overrides = new Dictionary<string, string?>
        {
            ["MedServe:HttpPort"] = "0",
            ["MedServe:GrpcPort"] = "0",
            ["MedServe:DataDir"] = root,
            ["MedServe:ModelRepository"] = repository,
            ["MedServe:ProvisionSamples"] = "false",
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in settings)
        {
            overrides[key] = value;
        }

        WebApplication app;
        try
        {
            app = ServerHost.Build(overrides, configure);
        }
        catch
        {
            if (ownsRoot)
            {
                Directory.Delete(root, recursive: true);
            }

            throw;
        }

        await app.StartAsync();
        // All the start-up work (load, reconcile, its audit records), so a test that breaks the audit store breaks only its own requests.
        var startup = app.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<Microsoft.Extensions.Hosting.BackgroundService>()
            .Single(s => s.GetType().Name == "ModelRepositoryService");
        await startup.ExecuteTask!.WaitAsync(TimeSpan.FromMinutes(2));
        return new RunningServer(app, root, ownsRoot);
    }

    public HttpClient Client(string? credential)
    {
        var client = new HttpClient { BaseAddress = HttpAddress };
        if (credential is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", credential);
        }

        return client;
    }

    /// <summary>A gRPC channel sending the credential as metadata on every call, as tritonclient.grpc does with its headers.</summary>
    public global::Grpc.Net.Client.GrpcChannel GrpcChannel(string? credential) =>
        global::Grpc.Net.Client.GrpcChannel.ForAddress(GrpcAddress, new global::Grpc.Net.Client.GrpcChannelOptions { HttpClient = Client(credential), DisposeHttpClient = true });

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (_ownsRoot)
        {
            Directory.Delete(Root, recursive: true);
        }
    }
}
