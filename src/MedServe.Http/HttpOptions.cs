namespace MedServe.Http;

public sealed class HttpFrontendOptions
{
    /// <summary>Largest request body accepted, in bytes (64 MiB by default).</summary>
    public long MaxRequestBodyBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>
    /// The most a gzip or deflate body may decode to per compressed byte read (100 by default;
    /// 0 is no limit); past it, and past 64 KiB, the body is refused with 413 as a decompression
    /// bomb. The decoded body is also held to <see cref="MaxRequestBodyBytes"/>.
    /// </summary>
    public int MaxDecompressionRatio { get; set; } = 100;
}
