using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Grpc.Net.Client;
using MedServe.Grpc.Protocol;
using MedServe.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace MedServe.IntegrationTests;

/// <summary>TLS from PEM files on both ports, with a certificate the test makes: REST over HTTPS with HSTS, gRPC over TLS.</summary>
public sealed class TlsTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "medserve-tls-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    [Fact]
    public async Task Rest_and_grpc_answer_over_tls_with_hsts()
    {
        Directory.CreateDirectory(Path.Combine(_root, "models"));
        using var certificate = MakeCertificate();
        var certPath = Path.Combine(_root, "server.crt");
        var keyPath = Path.Combine(_root, "server.key");
        await File.WriteAllTextAsync(certPath, certificate.ExportCertificatePem());
        using (var key = certificate.GetRSAPrivateKey()!)
        {
            await File.WriteAllTextAsync(keyPath, key.ExportPkcs8PrivateKeyPem());
        }

        await using var app = ServerHost.Build(new Dictionary<string, string?>
        {
            ["MedServe:HttpPort"] = "0",
            ["MedServe:GrpcPort"] = "0",
            ["MedServe:DataDir"] = _root,
            ["MedServe:ModelRepository"] = Path.Combine(_root, "models"),
            ["MedServe:ProvisionSamples"] = "false",
            ["MedServe:Tls:CertificatePath"] = certPath,
            ["MedServe:Tls:KeyPath"] = keyPath,
            ["Logging:LogLevel:Default"] = "Warning",
        });
        await app.StartAsync();
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.ToList();
        var thumbprint = certificate.Thumbprint;
        using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, cert, _, _) => cert?.Thumbprint == thumbprint };

        using var client = new HttpClient(handler, disposeHandler: false) { BaseAddress = new Uri(addresses[0]) };
        using var live = await client.GetAsync("/v2/health/live");
        Assert.StartsWith("https://", addresses[0]);
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal("max-age=31536000", live.Headers.GetValues("Strict-Transport-Security").Single());

        using var channel = GrpcChannel.ForAddress(addresses[1], new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = false });
        Assert.True((await new GRPCInferenceService.GRPCInferenceServiceClient(channel).ServerLiveAsync(new ServerLiveRequest())).Live);
        await app.StopAsync();
    }

    [Fact]
    public void A_missing_certificate_stops_the_start_with_a_message_that_names_it()
    {
        var error = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() =>
        {
            var app = ServerHost.Build(new Dictionary<string, string?>
            {
                ["MedServe:HttpPort"] = "0",
                ["MedServe:GrpcPort"] = "0",
                ["MedServe:DataDir"] = _root,
                ["MedServe:Tls:CertificatePath"] = "/nonexistent/server.crt",
                ["MedServe:Tls:KeyPath"] = "/nonexistent/server.key",
            });
            app.StartAsync().GetAwaiter().GetResult();
        });

        Assert.Contains("cannot load the certificate '/nonexistent/server.crt'", error.Message);
    }

    private static X509Certificate2 MakeCertificate()
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=medserve-test", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
    }
}
