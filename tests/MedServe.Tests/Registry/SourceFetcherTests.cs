using System.Net;
using System.Net.Sockets;
using System.Text;
using MedServe.Registry.Sources;

namespace MedServe.Tests.Registry;

/// <summary>Model sources are named by callers with a narrow key: local paths are confined, redirects and private addresses checked.</summary>
public sealed class SourceFetcherTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "medserve-sources-" + Guid.NewGuid().ToString("N"));
    private readonly string _allowed;
    private readonly string _secret;

    public SourceFetcherTests()
    {
        _allowed = Path.Combine(_root, "shared-models");
        Directory.CreateDirectory(Path.Combine(_allowed, "sepsis"));
        File.WriteAllText(Path.Combine(_allowed, "sepsis", "model.onnx"), "onnx bytes");
        _secret = Path.Combine(_root, "secrets", "pseudonym.key");
        Directory.CreateDirectory(Path.GetDirectoryName(_secret)!);
        File.WriteAllText(_secret, "top secret");
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public async Task Without_allowed_directories_no_local_source_is_read_and_the_refusal_names_the_setting()
    {
        var fetcher = new SourceFetcher(new RegistrySourceOptions());

        foreach (var source in new[] { Path.Combine(_allowed, "sepsis", "model.onnx"), "file://" + _secret, _secret, "/proc/self/environ", "/etc/passwd" })
        {
            var (content, reason) = await fetcher.OpenAsync(source, CancellationToken.None);
            Assert.Null(content);
            Assert.Contains("MedServe:Registry:AllowedSourceDirectories", reason);
            Assert.DoesNotContain(_root, reason);
        }
    }

    [Fact]
    public async Task Paths_outside_the_allowed_folders_are_refused_alike_whether_or_not_they_exist()
    {
        File.CreateSymbolicLink(Path.Combine(_allowed, "sepsis", "evil.onnx"), _secret);
        Directory.CreateSymbolicLink(Path.Combine(_allowed, "escape"), _root);
        var fetcher = new SourceFetcher(new RegistrySourceOptions { AllowedSourceDirectories = [_allowed] });
        var hostile = new[]
        {
            _secret, "file://" + _secret, Path.Combine(_root, "secrets", "missing.key"), "/proc/self/environ", "/etc/passwd",
            Path.Combine(_allowed, "..", "secrets", "pseudonym.key"), "file://" + Path.Combine(_allowed, "..", "secrets", "pseudonym.key"),
            Path.Combine(_allowed, "sepsis", "evil.onnx"), Path.Combine(_allowed, "escape", "secrets", "pseudonym.key"),
            Path.Combine(_allowed, "sepsis", "missing.onnx"), "file://localhost" + _secret,
        };

        var reasons = new HashSet<string>();
        foreach (var source in hostile)
        {
            var (content, reason) = await fetcher.OpenAsync(source, CancellationToken.None);
            Assert.True(content is null, source);
            Assert.DoesNotContain(_root, reason);
            reasons.Add(reason!);
        }

        // One answer: the caller cannot tell a missing file from an existing one it may not read.
        Assert.Single(reasons);
    }

    [Fact]
    public async Task A_folder_source_skips_onnx_links_that_lead_out()
    {
        var folder = Path.Combine(_allowed, "linked");
        Directory.CreateDirectory(folder);
        File.CreateSymbolicLink(Path.Combine(folder, "a.onnx"), _secret);
        File.WriteAllText(Path.Combine(folder, "b.onnx"), "the real one");
        var fetcher = new SourceFetcher(new RegistrySourceOptions { AllowedSourceDirectories = [_allowed] });

        var (content, _) = await fetcher.OpenAsync(folder, CancellationToken.None);

        await using (content)
        {
            Assert.Equal("the real one", await new StreamReader(content!).ReadToEndAsync());
        }
    }

    [Fact]
    public async Task A_file_inside_an_allowed_folder_is_read()
    {
        var fetcher = new SourceFetcher(new RegistrySourceOptions { AllowedSourceDirectories = [_allowed] });

        foreach (var source in new[] { Path.Combine(_allowed, "sepsis", "model.onnx"), "file://" + Path.Combine(_allowed, "sepsis"), Path.Combine(_allowed, "sepsis", ".", "model.onnx") })
        {
            var (content, reason) = await fetcher.OpenAsync(source, CancellationToken.None);
            Assert.True(content is not null, reason);
            await using (content)
            {
                Assert.Equal("onnx bytes", await new StreamReader(content).ReadToEndAsync());
            }
        }
    }

    [Fact]
    public async Task A_redirect_to_a_host_off_the_list_is_not_followed()
    {
        using var other = new StubHttpServer(_ => "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nstolen");
        using var allowed = new StubHttpServer(path => path == "/model.onnx"
            ? $"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.2:{other.Port}/secret\r\nContent-Length: 0\r\n\r\n"
            : $"HTTP/1.1 302 Found\r\nLocation: /final.onnx\r\nContent-Length: 0\r\n\r\n");
        var fetcher = new SourceFetcher(new RegistrySourceOptions { AllowedSourceHosts = ["localhost"] });

        var (content, reason) = await fetcher.OpenAsync($"http://localhost:{allowed.Port}/model.onnx", CancellationToken.None);

        Assert.Null(content);
        Assert.Contains("redirect led to host '127.0.0.2'", reason);
        Assert.Equal(0, other.Requests);
    }

    [Fact]
    public async Task A_redirect_on_the_same_listed_host_is_followed_and_checked_again()
    {
        using var server = new StubHttpServer(path => path == "/final.onnx"
            ? "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nmodel"
            : "HTTP/1.1 301 Moved\r\nLocation: /final.onnx\r\nContent-Length: 0\r\n\r\n");
        var fetcher = new SourceFetcher(new RegistrySourceOptions { AllowedSourceHosts = ["localhost"] });

        var (content, reason) = await fetcher.OpenAsync($"http://localhost:{server.Port}/start", CancellationToken.None);

        Assert.True(content is not null, reason);
        await using (content)
        {
            Assert.Equal("model", await new StreamReader(content).ReadToEndAsync());
        }

        Assert.Equal(2, server.Requests);
    }

    [Fact]
    public async Task A_listed_name_that_resolves_to_a_loopback_address_is_not_connected_to()
    {
        using var server = new StubHttpServer(_ => "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nmodel");

        // The machine's own name resolves to a loopback or private address here (/etc/hosts): listed by name
        // only, it must not reach the local server, as a DNS name rebound to 127.0.0.1 must not.
        var name = Dns.GetHostName();
        Assert.All(await Dns.GetHostAddressesAsync(name), a => Assert.False(SourceFetcher.IsPublic(a), $"{name} resolves to a public address on this machine"));
        var fetcher = new SourceFetcher(new RegistrySourceOptions { AllowedSourceHosts = [name] });

        var (content, reason) = await fetcher.OpenAsync($"http://{name}:{server.Port}/m.onnx", CancellationToken.None);

        Assert.Null(content);
        Assert.Contains("loopback, link-local or private", reason);
        Assert.Equal(0, server.Requests);
    }

    [Theory]
    [InlineData("127.0.0.1", false)]
    [InlineData("10.1.2.3", false)]
    [InlineData("172.20.0.1", false)]
    [InlineData("192.168.1.1", false)]
    [InlineData("169.254.169.254", false)]
    [InlineData("100.64.0.1", false)]
    [InlineData("0.0.0.0", false)]
    [InlineData("::1", false)]
    [InlineData("fe80::1", false)]
    [InlineData("fd00::1", false)]
    [InlineData("::ffff:10.0.0.1", false)]
    [InlineData("8.8.8.8", true)]
    [InlineData("2606:4700::1111", true)]
    public void Special_addresses_are_not_public(string address, bool isPublic) =>
        Assert.Equal(isPublic, SourceFetcher.IsPublic(IPAddress.Parse(address).IsIPv4MappedToIPv6 ? IPAddress.Parse(address).MapToIPv4() : IPAddress.Parse(address)));

    [Fact]
    public void A_private_address_is_permitted_when_the_list_names_it()
    {
        var options = new RegistrySourceOptions { AllowedSourceHosts = ["10.0.0.5", "localhost"] };

        Assert.True(SourceFetcher.AddressPermitted(options, "10.0.0.5", IPAddress.Parse("10.0.0.5")));
        Assert.False(SourceFetcher.AddressPermitted(options, "models.example", IPAddress.Parse("10.0.0.6")));
        Assert.True(SourceFetcher.AddressPermitted(options, "localhost", IPAddress.Loopback));
        Assert.False(SourceFetcher.AddressPermitted(options, "localhost", IPAddress.Parse("169.254.169.254")));
        Assert.True(SourceFetcher.AddressPermitted(options, "models.example", IPAddress.Parse("8.8.8.8")));
    }

    /// <summary>A real HTTP/1.1 server on a loopback socket that answers each request from its path, and counts them.</summary>
    private sealed class StubHttpServer : IDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private int _requests;

        public StubHttpServer(Func<string, string> answer)
        {
            _listener.Start();
            _ = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    using var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                    var stream = client.GetStream();
                    var request = new StringBuilder();
                    var buffer = new byte[4096];
                    while (!request.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                    {
                        var read = await stream.ReadAsync(buffer, _stop.Token);
                        if (read == 0)
                        {
                            break;
                        }

                        request.Append(Encoding.ASCII.GetString(buffer, 0, read));
                    }

                    Interlocked.Increment(ref _requests);
                    var path = request.ToString().Split(' ') is { Length: > 1 } parts ? parts[1] : "/";
                    await stream.WriteAsync(Encoding.ASCII.GetBytes(answer(path).Replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n", StringComparison.Ordinal)), _stop.Token);
                }
            });
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public int Requests => Volatile.Read(ref _requests);

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Stop();
        }
    }
}
