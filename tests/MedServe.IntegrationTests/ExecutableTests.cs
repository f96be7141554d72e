using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

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
        var httpPort = FreePort();
        var grpcPort = FreePort();
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "medserve.dll"), "serve", "--grpc-port", grpcPort.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            WorkingDirectory = _workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["MEDSERVE_HTTP_PORT"] = httpPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var process = Process.Start(start)!;
        var output = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.ErrorDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}") };
            await WaitReadyAsync(client, process, output);

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
            lock (output)
            {
                Assert.Contains($"created the admin API key (shown once; also in {keyFile}, mode 0600)", output.ToString());
                Assert.Contains(adminKey, output.ToString());
            }

            client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", adminKey);

            var index = JsonDocument.Parse(await (await client.PostAsync("/v2/repository/index", null)).Content.ReadAsStringAsync()).RootElement;
            Assert.Equal(["breast-cancer", "resnet18", "risk"], index.EnumerateArray().Where(e => e.GetProperty("state").GetString() == "READY").Select(e => e.GetProperty("name").GetString()));
            Assert.True(File.Exists(Path.Combine(_workingDirectory, ".medserve", "models", "breast-cancer", "1", "model.onnx")));
            var training = JsonDocument.Parse(File.ReadAllText(Path.Combine(_workingDirectory, ".medserve", "models", "breast-cancer", "1", "training.json"))).RootElement;
            Assert.InRange(training.GetProperty("HeldOutAuroc").GetDouble(), 0.99, 1.0);

            using var tcp = new TcpClient();
            await tcp.ConnectAsync(IPAddress.Loopback, grpcPort); // the gRPC port from the command line listens
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
    }

    [Theory]
    [InlineData(new[] { "--host", "0.0.0.0" }, "refusing to listen on 0.0.0.0, which is not a loopback address, because TLS is off")]
    [InlineData(new[] { "--host", "0.0.0.0", "--no-auth" }, "because TLS is off (set MedServe:Tls:CertificatePath and MedServe:Tls:KeyPath, or MEDSERVE_TLS__CERTIFICATE_PATH and MEDSERVE_TLS__KEY_PATH) and authentication is off")]
    public async Task A_network_address_without_TLS_and_authentication_is_refused_with_the_fix(string[] options, string message)
    {
        var start = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "medserve.dll"), "serve", .. options])
        {
            WorkingDirectory = _workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.Equal(2, process.ExitCode);
        Assert.Contains(message, error);
        Assert.DoesNotContain("   at ", error); // a message, not a stack trace
    }

    private static async Task WaitReadyAsync(HttpClient client, Process process, System.Text.StringBuilder output)
    {
        // Bounded: training and the ResNet rewrite take seconds; the loop ends on ready, exit or 2 minutes.
        var deadline = Stopwatch.GetTimestamp() + Stopwatch.Frequency * 120;
        while (Stopwatch.GetTimestamp() < deadline)
        {
            Assert.False(process.HasExited, "the server exited: " + output);
            try
            {
                using var response = await client.GetAsync("/v2/health/ready");
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(200);
        }

        Assert.Fail("the server did not become ready within 2 minutes: " + output);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
