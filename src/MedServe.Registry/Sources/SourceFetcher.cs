namespace MedServe.Registry.Sources;

/// <summary>The "MedServe:Registry" section.</summary>
public sealed class RegistrySourceOptions
{
    /// <summary>Hosts an http(s):// model source may be downloaded from; empty: none.</summary>
    public List<string> AllowedSourceHosts { get; set; } = [];
}

/// <summary>
/// Reads a model version's source when MedServe can: a local path or file:// URI (an ONNX file,
/// or a folder holding one), or an http(s):// URL on the allow-list. Anything else is not
/// readable, and the reason says why.
/// </summary>
public sealed class SourceFetcher(RegistrySourceOptions options, HttpClient http)
{
    /// <summary>Opens the source's ONNX bytes, or returns why it cannot.</summary>
    public async Task<(Stream? Content, string? Reason)> OpenAsync(string source, CancellationToken cancellationToken)
    {
        if (Uri.TryCreate(source, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https")
        {
            if (!options.AllowedSourceHosts.Contains(uri.Host, StringComparer.OrdinalIgnoreCase))
            {
                return (null, $"host '{uri.Host}' is not on the allow-list of model sources (MedServe:Registry:AllowedSourceHosts)");
            }

            var response = await http.GetAsync(uri, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                var status = (int)response.StatusCode;
                response.Dispose();
                return (null, $"downloading '{source}' answered {status}");
            }

            return (await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), null);
        }

        string path;
        if (uri is { IsFile: true })
        {
            path = uri.LocalPath;
        }
        else if (Path.IsPathRooted(source))
        {
            path = source;
        }
        else
        {
            return (null, $"source '{source}' cannot be read by MedServe (a local path, file://, or an allowed http(s):// URL can)");
        }

        if (Directory.Exists(path))
        {
            var onnx = Directory.EnumerateFiles(path, "*.onnx", SearchOption.AllDirectories).Order(StringComparer.Ordinal).FirstOrDefault();
            if (onnx is null)
            {
                return (null, $"source folder '{source}' holds no .onnx file");
            }

            path = onnx;
        }

        return File.Exists(path) ? (File.OpenRead(path), null) : (null, $"source '{source}' does not exist");
    }
}
