namespace MedServe.Http;

public sealed class HttpFrontendOptions
{
    /// <summary>Largest request body accepted, in bytes (64 MiB by default).</summary>
    public long MaxRequestBodyBytes { get; set; } = 64L * 1024 * 1024;
}
