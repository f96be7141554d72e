using System.Net;
using System.Net.Sockets;
using MedServe.Files;

namespace MedServe.Registry.Sources;

/// <summary>The "MedServe:Registry" section.</summary>
public sealed class RegistrySourceOptions
{
    /// <summary>Hosts an http(s):// model source may be downloaded from; empty: none.</summary>
    public List<string> AllowedSourceHosts { get; set; } = [];

    /// <summary>Folders a local or file:// model source may be read from; empty (the default): none.</summary>
    public List<string> AllowedSourceDirectories { get; set; } = [];

    /// <summary>The largest model file a registration may bring.</summary>
    public long MaxArtifactBytes { get; set; } = 4L << 30;
}

/// <summary>
/// Reads a model version's source when MedServe may: a local path or file:// URI inside an
/// allow-listed folder (an ONNX file, or a folder holding one), or an http(s):// URL on an
/// allow-listed host. A source is named by a caller with a narrow key, so it is hostile: paths are
/// canonicalised with symlinks resolved and confined, redirects are checked hop by hop, and
/// loopback, link-local and private addresses are reached only when listed explicitly. A refusal
/// names the setting to change and never says whether a file exists or where the server keeps it.
/// </summary>
public sealed class SourceFetcher
{
    private const int MaxRedirects = 5;
    private readonly RegistrySourceOptions _options;
    private readonly HttpClient _http;

    public SourceFetcher(RegistrySourceOptions options, HttpClient? http = null)
    {
        _options = options;
        _http = http ?? CreateClient(options);
    }

    /// <summary>
    /// An HttpClient that follows no redirect by itself and connects only to addresses the
    /// allow-list permits: the name check alone would let DNS send an allowed name to a private address.
    /// </summary>
    public static HttpClient CreateClient(RegistrySourceOptions options) => new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        UseProxy = false,
        ConnectCallback = async (context, cancellationToken) =>
        {
            var host = context.DnsEndPoint.Host;
            var addresses = IPAddress.TryParse(host, out var literal)
                ? [literal]
                : await Dns.GetHostAddressesAsync(host, cancellationToken).ConfigureAwait(false);
            var permitted = addresses.Where(a => AddressPermitted(options, host, a)).ToList();
            if (permitted.Count == 0)
            {
                throw new HttpRequestException($"host '{host}' resolves only to loopback, link-local or private addresses, which are reached only when listed in MedServe:Registry:AllowedSourceHosts by address (or as localhost)");
            }

            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(permitted.ToArray(), context.DnsEndPoint.Port, cancellationToken).ConfigureAwait(false);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    })
    { Timeout = TimeSpan.FromMinutes(5) };

    /// <summary>Opens the source's ONNX bytes, or returns why it cannot.</summary>
    public async Task<(Stream? Content, string? Reason)> OpenAsync(string source, CancellationToken cancellationToken)
    {
        if (Uri.TryCreate(source, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https")
        {
            return await DownloadAsync(uri, cancellationToken).ConfigureAwait(false);
        }

        if (uri is { IsFile: true })
        {
            // file:///x and file://localhost/x name this machine; a file URI of another host names nothing MedServe may read.
            return OpenLocal(uri.Host is "" or "localhost" ? Uri.UnescapeDataString(uri.AbsolutePath) : null);
        }

        return Path.IsPathRooted(source)
            ? OpenLocal(source)
            : (null, "source cannot be read by MedServe (a local path or file:// URI inside MedServe:Registry:AllowedSourceDirectories, or an http(s):// URL on MedServe:Registry:AllowedSourceHosts, can)");
    }

    private async Task<(Stream?, string?)> DownloadAsync(Uri uri, CancellationToken cancellationToken)
    {
        for (var hop = 0; ; hop++)
        {
            if (uri.Scheme is not ("http" or "https"))
            {
                return (null, "a redirect led to a URL that is not http(s); it was not followed");
            }

            if (!HostListed(uri.Host))
            {
                return (null, hop == 0
                    ? $"host '{uri.Host}' is not on the allow-list of model sources (MedServe:Registry:AllowedSourceHosts)"
                    : $"a redirect led to host '{uri.Host}', which is not on the allow-list of model sources (MedServe:Registry:AllowedSourceHosts); it was not followed");
            }

            HttpResponseMessage response;
            try
            {
                response = await _http.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException e)
            {
                return (null, $"downloading from host '{uri.Host}' failed: {e.Message}");
            }

            var status = (int)response.StatusCode;
            if (status is >= 300 and < 400 && response.Headers.Location is { } location)
            {
                response.Dispose();
                if (hop == MaxRedirects)
                {
                    return (null, $"more than {MaxRedirects} redirects; not followed");
                }

                uri = location.IsAbsoluteUri ? location : new Uri(uri, location);
                continue;
            }

            if (!response.IsSuccessStatusCode)
            {
                response.Dispose();
                return (null, $"downloading from host '{uri.Host}' answered {status}");
            }

            return (await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), null);
        }
    }

    private (Stream?, string?) OpenLocal(string? path)
    {
        const string refused = "local model sources are read only from folders listed in MedServe:Registry:AllowedSourceDirectories";
        if (_options.AllowedSourceDirectories.Count == 0)
        {
            return (null, refused + " (none is listed)");
        }

        // One answer for "outside", "missing" and "a symlink out": a caller learns nothing about files it may not read.
        var notReadable = (null as Stream, $"the source is not a readable ONNX file (or folder holding one) inside the folders listed in MedServe:Registry:AllowedSourceDirectories");
        if (string.IsNullOrEmpty(path) || path.Contains('\0'))
        {
            return notReadable;
        }

        var roots = _options.AllowedSourceDirectories.Select(PathConfinement.RealPath).OfType<string>().ToList();
        var lexical = Path.GetFullPath(path);
        if (!roots.Any(r => PathConfinement.IsInside(r, lexical)) && !_options.AllowedSourceDirectories.Any(d => PathConfinement.IsInside(Path.GetFullPath(d), lexical)))
        {
            return notReadable;
        }

        var resolved = PathConfinement.RealPath(lexical);
        if (resolved is null || !roots.Any(r => PathConfinement.IsInside(r, resolved)))
        {
            return notReadable;
        }

        if (Directory.Exists(resolved))
        {
            // The first .onnx file in name order, itself confined (a symlink in the folder may point anywhere).
            resolved = Directory.EnumerateFiles(resolved, "*.onnx", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
                .Select(PathConfinement.RealPath)
                .FirstOrDefault(f => f is not null && roots.Any(r => PathConfinement.IsInside(r, f)));
            if (resolved is null)
            {
                return notReadable;
            }
        }

        try
        {
            var stream = new FileStream(resolved, FileMode.Open, FileAccess.Read, FileShare.Read);

            // What was opened is what counts: a symlink swapped in since the check is caught here.
            if (OperatingSystem.IsLinux() && PathConfinement.RealPath($"/proc/self/fd/{stream.SafeFileHandle.DangerousGetHandle()}") is { } opened
                && !roots.Any(r => PathConfinement.IsInside(r, opened)))
            {
                stream.Dispose();
                return notReadable;
            }

            return (stream, null);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return notReadable;
        }
    }

    private bool HostListed(string host) => _options.AllowedSourceHosts.Contains(host.Trim('[', ']'), StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// A public address is permitted for a listed host; a loopback, link-local, private or otherwise
    /// special one only when the allow-list names it by address, or the host is localhost and listed.
    /// </summary>
    internal static bool AddressPermitted(RegistrySourceOptions options, string host, IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (IsPublic(address))
        {
            return true;
        }

        var listed = options.AllowedSourceHosts;
        return listed.Any(h => IPAddress.TryParse(h.Trim('[', ']'), out var a) && a.Equals(address))
            || (IPAddress.IsLoopback(address) && host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
                && listed.Contains("localhost", StringComparer.OrdinalIgnoreCase));
    }

    internal static bool IsPublic(IPAddress address)
    {
        if (IPAddress.IsLoopback(address) || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any) || address.Equals(IPAddress.Broadcast))
        {
            return false;
        }

        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            var bytes6 = address.GetAddressBytes();
            return !(address.IsIPv6LinkLocal || address.IsIPv6SiteLocal || address.IsIPv6Multicast
                || (bytes6[0] & 0xfe) == 0xfc); // fc00::/7, unique local
        }

        var b = address.GetAddressBytes();
        return !(b[0] == 10 || b[0] == 0 || b[0] == 127 || b[0] >= 224
            || (b[0] == 172 && b[1] is >= 16 and <= 31)
            || (b[0] == 192 && b[1] == 168)
            || (b[0] == 169 && b[1] == 254)
            || (b[0] == 100 && b[1] is >= 64 and <= 127) // carrier-grade NAT
            || (b[0] == 198 && b[1] is 18 or 19) // benchmarking
            || (b[0] == 192 && b[1] == 0 && b[2] is 0 or 2) || (b[0] == 198 && b[1] == 51 && b[2] == 100) || (b[0] == 203 && b[1] == 0 && b[2] == 113)); // reserved, documentation
    }
}
