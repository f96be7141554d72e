using System.IO.Compression;
using MedServe.Buffers;
using MedServe.Inference;
using Microsoft.AspNetCore.Http;

namespace MedServe.Http.V2;

/// <summary>A whole request body in one array from <see cref="BodyBuffers"/>, counted in flight until disposed.</summary>
internal readonly struct BodyBuffer(byte[] array, int length, InFlightBytes budget) : IDisposable
{
    public byte[] Array { get; } = array;

    public int Length { get; } = length;

    public ReadOnlyMemory<byte> Memory => Array.AsMemory(0, Length);

    public void Dispose()
    {
        if (Array is not null)
        {
            BodyBuffers.Return(Array);
            budget.Release(Array.Length);
        }
    }
}

/// <summary>
/// Reads a whole request body into one array, within the configured size limit. The array
/// starts small and doubles as bytes arrive (never sized by the declared Content-Length alone),
/// each growth reserved in the server's <see cref="InFlightBytes"/> before it is made; a
/// compressed body is refused once it decodes to more than the allowed ratio of what was read.
/// </summary>
internal static class RequestBody
{
    /// <summary>The first array for a body of unknown (or compressed) length; a declared smaller one gets its own length.</summary>
    public const int InitialSize = 16 * 1024;

    /// <summary>A declared length gets a first array up to this; the rest must arrive to be paid for.</summary>
    public const int InitialDeclaredSize = 64 * 1024;

    /// <summary>A compressed body may always decode to this much, whatever its ratio (small, repetitive bodies).</summary>
    public const int RatioFloor = 64 * 1024;

    /// <param name="limit">The most bytes the (decoded) body may have.</param>
    /// <param name="maxRatio">The most bytes a compressed body may decode to per byte read; 0 or less is no limit.</param>
    public static async ValueTask<BodyBuffer> ReadAsync(HttpRequest request, long limit, int maxRatio, InFlightBytes budget, CancellationToken cancellationToken)
    {
        if (request.ContentLength is { } declared && declared > limit)
        {
            throw new InferenceException(InferenceErrorKind.TooLarge, $"the request body is {declared} bytes, above the limit of {limit} bytes");
        }

        var encoding = request.Headers.ContentEncoding.ToString();
        var compressed = encoding switch
        {
            "" or "identity" => null,
            "gzip" or "deflate" => new CountingStream(request.Body),
            _ => throw InferenceException.Invalid($"unsupported Content-Encoding '{encoding}'; use gzip or deflate"),
        };
        Stream? decoder = encoding switch
        {
            "gzip" => new GZipStream(compressed!, CompressionMode.Decompress, leaveOpen: true),
            "deflate" => new ZLibStream(compressed!, CompressionMode.Decompress, leaveOpen: true),
            _ => null,
        };

        // The most the body can be: the declared length of a body sent as it is, else the limit.
        long? exact = decoder is null ? request.ContentLength : null;
        var most = exact ?? limit;
        var buffer = Grow(null, 0, (int)Math.Min(most, exact is null ? InitialSize : InitialDeclaredSize), budget);
        var total = 0;
        try
        {
            var source = decoder ?? request.Body;
            while (true)
            {
                var room = (int)Math.Min(buffer.Length, most);
                if (total == room)
                {
                    if (total >= most)
                    {
                        if (exact is not null)
                        {
                            break; // Kestrel delivers no more than the declared length.
                        }

                        // At the limit: one more byte would pass it; see whether the body goes on.
                        var probe = new byte[1];
                        if (await source.ReadAsync(probe, cancellationToken).ConfigureAwait(false) > 0)
                        {
                            throw new InferenceException(InferenceErrorKind.TooLarge, $"the request body is above the limit of {limit} bytes");
                        }

                        break;
                    }

                    buffer = Grow(buffer, total, (int)Math.Min(most, (long)buffer.Length * 2), budget);
                    room = (int)Math.Min(buffer.Length, most);
                }

                var read = await source.ReadAsync(buffer.AsMemory(total, room - total), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                total += read;
                if (compressed is not null && maxRatio > 0 && total > RatioFloor && total > (long)maxRatio * compressed.Count)
                {
                    throw new InferenceException(InferenceErrorKind.TooLarge,
                        $"the {encoding} body decodes to more than {maxRatio} times its compressed size (MedServe:Http:MaxDecompressionRatio); refused as a decompression bomb");
                }
            }

            return new BodyBuffer(buffer, total, budget);
        }
        catch (InvalidDataException)
        {
            Release(buffer, budget);
            throw InferenceException.Invalid($"the body is not valid {encoding} data");
        }
        catch
        {
            Release(buffer, budget);
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

    /// <summary>
    /// A larger array holding the first <paramref name="used"/> bytes of <paramref name="old"/>,
    /// reserved before it is taken; <paramref name="old"/> is given back (and released) once copied.
    /// </summary>
    private static byte[] Grow(byte[]? old, int used, int size, InFlightBytes budget)
    {
        var capacity = BodyBuffers.CapacityFor(Math.Max(size, 1));
        if (!budget.TryReserve(capacity))
        {
            throw budget.Refusal();
        }

        byte[] larger;
        try
        {
            larger = BodyBuffers.Rent(Math.Max(size, 1));
        }
        catch
        {
            budget.Release(capacity);
            throw;
        }

        budget.Release(capacity - larger.Length); // nothing, unless a pool gave another length
        if (old is not null)
        {
            old.AsSpan(0, used).CopyTo(larger);
            Release(old, budget);
        }

        return larger;
    }

    private static void Release(byte[] buffer, InFlightBytes budget)
    {
        BodyBuffers.Return(buffer);
        budget.Release(buffer.Length);
    }

    /// <summary>Counts the compressed bytes a decoder has read, for the ratio limit.</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        public long Count { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => Count; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Counted(inner.Read(buffer, offset, count));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Counted(await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        private int Counted(int read)
        {
            Count += read;
            return read;
        }
    }
}
