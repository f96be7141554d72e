using System.Net.Http.Headers;
using MedServe.Hosting;
using MedServe.Samples;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace MedServe.IntegrationTests.Support;

/// <summary>
/// A server of a test's own, for settings the shared fixture must not have (JWT issuers, tiny
/// limits, a broken audit store): the risk sample only, on free loopback ports.
/// </summary>
public sealed class RunningServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private RunningServer(WebApplication app, string root)
    {
        _app = app;
        Root = root;
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.ToList();
        HttpAddress = new Uri(addresses[0]);
        GrpcAddress = new Uri(addresses[1]);
        AdminKey = File.ReadAllText(Path.Combine(root, "admin.key")).Trim();
    }

    public string Root { get; }

    public Uri HttpAddress { get; }

    public Uri GrpcAddress { get; }

    public string AdminKey { get; }

    public IServiceProvider Services => _app.Services;

    public static async Task<RunningServer> StartAsync(IDictionary<string, string?> settings, Action<WebApplicationBuilder>? configure = null)
    {
        var root = Path.Combine(Path.GetTempPath(), "medserve-own-" + Guid.NewGuid().ToString("N"));
        var repository = Path.Combine(root, "models");
        SampleModels.ProvisionRisk(repository);
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
            Directory.Delete(root, recursive: true);
            throw;
        }

        await app.StartAsync();
        // All the start-up work (load, reconcile, its audit records), so a test that breaks the audit store breaks only its own requests.
        var startup = app.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<Microsoft.Extensions.Hosting.BackgroundService>()
            .Single(s => s.GetType().Name == "ModelRepositoryService");
        await startup.ExecuteTask!.WaitAsync(TimeSpan.FromMinutes(1));
        return new RunningServer(app, root);
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

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        Directory.Delete(Root, recursive: true);
    }
}
