using System.Buffers;
using System.IO.Compression;
using MedServe.Inference;
using Microsoft.AspNetCore.Http;

namespace MedServe.Http.V2;

/// <summary>Reads a whole request body into one pooled array, within the configured size limit.</summary>
internal static class RequestBody
{
    /// <summary>Returns the pooled array and the body's length; the caller returns the array to the pool.</summary>
    public static async Task<(byte[] Buffer, int Length)> ReadAsync(HttpRequest request, long limit, CancellationToken cancellationToken)
    {
        if (request.ContentLength is { } declared && declared > limit)
        {
            throw new InferenceException(InferenceErrorKind.TooLarge, $"the request body is {declared} bytes, above the limit of {limit} bytes");
        }

        var stream = request.Body;
        var encoding = request.Headers.ContentEncoding.ToString();
        Stream? decoder = encoding switch
        {
            "" or "identity" => null,
            "gzip" => new GZipStream(stream, CompressionMode.Decompress, leaveOpen: true),
            "deflate" => new ZLibStream(stream, CompressionMode.Decompress, leaveOpen: true),
            _ => throw InferenceException.Invalid($"unsupported Content-Encoding '{encoding}'; use gzip or deflate"),
        };

        var initial = decoder is null && request.ContentLength is { } length ? (int)length : 16 * 1024;
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(initial, 1));
        var total = 0;
        try
        {
            var source = decoder ?? stream;
            while (true)
            {
                if (total == buffer.Length)
                {
                    if (buffer.Length >= limit)
                    {
                        // One more byte would pass the limit: check whether the body really goes on.
                        var probe = new byte[1];
                        if (await source.ReadAsync(probe, cancellationToken).ConfigureAwait(false) > 0)
                        {
                            throw new InferenceException(InferenceErrorKind.TooLarge, $"the request body is above the limit of {limit} bytes");
                        }

                        break;
                    }

                    var larger = ArrayPool<byte>.Shared.Rent((int)Math.Min(limit, (long)buffer.Length * 2));
                    buffer.AsSpan(0, total).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }

                var read = await source.ReadAsync(buffer.AsMemory(total, (int)Math.Min(buffer.Length - total, limit - total + 1)), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                total += read;
                if (total > limit)
                {
                    throw new InferenceException(InferenceErrorKind.TooLarge, $"the request body is above the limit of {limit} bytes");
                }
            }

            return (buffer, total);
        }
        catch (InvalidDataException)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw InferenceException.Invalid($"the body is not valid {encoding} data");
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
        finally
        {
            if (decoder is not null)
            {
                await decoder.DisposeAsync().ConfigureAwait(false);
            }
        }
    }
}
