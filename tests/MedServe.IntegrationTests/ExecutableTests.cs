using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using MedServe.IntegrationTests.Support;

namespace MedServe.IntegrationTests;

/// <summary>
/// The executable as users run it: `medserve serve` in a fresh working directory provisions the
/// sample models under .medserve, takes options from the command line and MEDSERVE_* variables,
/// and becomes ready.
/// </summary>
public sealed class ExecutableTests : IDisposable
{
    private readonly string _workingDirectory = Path.Combine(Path.GetTempPath(), "medserve-exe-" + Guid.NewGuid().ToString("N"));

    public ExecutableTests() => Directory.CreateDirectory(_workingDirectory);

    public void Dispose() => Directory.Delete(_workingDirectory, recursive: true);

    [Fact]
    public async Task Serve_on_an_empty_directory_provisions_the_samples_and_serves_them()
    {
        var httpPort = ServerProcess.FreePort();
        var grpcPort = ServerProcess.FreePort();
        using var server = ServerProcess.Start(_workingDirectory, httpPort, ["serve", "--grpc-port", grpcPort.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            new Dictionary<string, string> { ["MEDSERVE_HTTP_PORT"] = httpPort.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        var client = server.Client;
        await server.WaitReadyAsync();

        // Secure by default: nothing but the health probes without the admin key, which the first start wrote, owner-only.
        using (var anonymous = await client.PostAsync("/v2/repository/index", null))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        }

        var keyFile = Path.Combine(_workingDirectory, ".medserve", "admin.key");
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
        }

        var adminKey = File.ReadAllText(keyFile).Trim();
        Assert.Contains($"created the admin API key (shown once; also in {keyFile}, mode 0600)", server.Output);
        Assert.Contains(adminKey, server.Output);

        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", adminKey);

        var index = JsonDocument.Parse(await (await client.PostAsync("/v2/repository/index", null)).Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(["breast-cancer", "resnet18", "risk"], index.EnumerateArray().Where(e => e.GetProperty("state").GetString() == "READY").Select(e => e.GetProperty("name").GetString()));
        Assert.True(File.Exists(Path.Combine(_workingDirectory, ".medserve", "models", "breast-cancer", "1", "model.onnx")));
        var training = JsonDocument.Parse(File.ReadAllText(Path.Combine(_workingDirectory, ".medserve", "models", "breast-cancer", "1", "training.json"))).RootElement;
        Assert.InRange(training.GetProperty("HeldOutAuroc").GetDouble(), 0.99, 1.0);

        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, grpcPort); // the gRPC port from the command line listens
    }

    [Theory]
    [InlineData(new[] { "--host", "0.0.0.0" }, "refusing to listen on 0.0.0.0, which is not a loopback address, because TLS is off")]
    [InlineData(new[] { "--host", "0.0.0.0", "--no-auth" }, "because TLS is off (set MedServe:Tls:CertificatePath and MedServe:Tls:KeyPath, or MEDSERVE_TLS__CERTIFICATE_PATH and MEDSERVE_TLS__KEY_PATH) and authentication is off")]
    public async Task A_network_address_without_TLS_and_authentication_is_refused_with_the_fix(string[] options, string message)
    {
        var (exitCode, output) = await ServerProcess.RunAsync(_workingDirectory, ["serve", .. options]);
        Assert.Equal(2, exitCode);
        Assert.Contains(message, output);
        Assert.DoesNotContain("   at ", output); // a message, not a stack trace
    }

    [Fact]
    public async Task Jwt_with_a_signing_key_but_no_issuer_or_audience_is_refused_with_exit_code_2()
    {
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        var publicKey = Path.Combine(_workingDirectory, "idp.pem");
        await File.WriteAllTextAsync(publicKey, key.ExportSubjectPublicKeyInfoPem());

        var (exitCode, output) = await ServerProcess.RunAsync(_workingDirectory, new Dictionary<string, string> { ["MEDSERVE_AUTH__JWT__SIGNING_KEY_PATH"] = publicKey }, "serve");

        Assert.Equal(2, exitCode);
        Assert.Contains("refusing to start with JWT bearer tokens enabled: no issuer to validate tokens against", output);
        Assert.Contains("no audience to validate tokens against", output);
        Assert.DoesNotContain("   at ", output);
        Assert.False(File.Exists(Path.Combine(_workingDirectory, ".medserve", "medserve.lock")), "refused before taking the data dir");
    }
}
