using System.IO.Compression;
using System.IO.Pipelines;
using MedServe.Buffers;
using MedServe.Http.V2;
using MedServe.Inference;
using Microsoft.AspNetCore.Http;

namespace MedServe.Tests.Http.V2;

/// <summary>
/// What a body holds while it arrives, counted by <see cref="InFlightBytes"/> (deterministic,
/// unlike the process's resident memory): buffers grow with the bytes, not the declaration.
/// </summary>
public sealed class RequestBodyTests
{
    private const long Limit = 64L * 1024 * 1024;

    [Fact]
    public async Task A_declared_60_MiB_body_that_sent_10_bytes_holds_a_small_buffer_and_nothing_once_it_ends()
    {
        var budget = new InFlightBytes(0);
        var pipe = NewPipe();
        var context = Request(pipe, declared: 60L * 1024 * 1024);
        using var abort = new CancellationTokenSource();
        await pipe.Writer.WriteAsync(new byte[10]);
        var reading = RequestBody.ReadAsync(context.Request, Limit, 100, budget, abort.Token).AsTask();
        await Settled(budget);

        Assert.False(reading.IsCompleted);
        Assert.Equal(RequestBody.InitialDeclaredSize, budget.Held);

        // The client stalls, then goes away: everything reserved is released.
        await abort.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reading);
        Assert.Equal(0, budget.Held);
    }

    [Fact]
    public async Task A_body_grows_by_doubling_as_its_bytes_arrive()
    {
        var budget = new InFlightBytes(0);
        var pipe = NewPipe();
        var context = Request(pipe, declared: 60L * 1024 * 1024);
        using var abort = new CancellationTokenSource();
        var reading = RequestBody.ReadAsync(context.Request, Limit, 100, budget, abort.Token).AsTask();
        await pipe.Writer.WriteAsync(new byte[3 * 1024 * 1024]);

        // 3 MiB arrived: a 4 MiB array holds them (the smaller ones it grew from are given back).
        // Waited for, not for a quiet moment: a busy machine can pause the reader mid-growth, and
        // while it grows it holds the new array and the old one (2 + 4 MiB) for a moment.
        for (var i = 0; i < 500 && budget.Held != 4 * 1024 * 1024; i++)
        {
            await Task.Delay(20);
        }

        Assert.Equal(4 * 1024 * 1024, budget.Held);
        await abort.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reading);
        Assert.Equal(0, budget.Held);
    }

    [Fact]
    public async Task A_whole_body_is_read_and_released_when_disposed()
    {
        var budget = new InFlightBytes(0);
        var pipe = NewPipe();
        var data = Enumerable.Range(0, 200_000).Select(i => (byte)i).ToArray();
        var context = Request(pipe, declared: data.Length);
        await pipe.Writer.WriteAsync(data);
        await pipe.Writer.CompleteAsync();

        var body = await RequestBody.ReadAsync(context.Request, Limit, 100, budget, CancellationToken.None);

        Assert.Equal(data, body.Memory.ToArray());
        Assert.Equal(BodyBuffers.CapacityFor(data.Length), budget.Held);
        body.Dispose();
        Assert.Equal(0, budget.Held);
    }

    [Fact]
    public async Task A_body_that_would_pass_the_servers_cap_is_refused_and_holds_nothing()
    {
        var budget = new InFlightBytes(300 * 1024);
        Assert.True(budget.TryReserve(200 * 1024)); // other bodies in flight
        var pipe = NewPipe();
        var context = Request(pipe, declared: 1024 * 1024);
        await pipe.Writer.WriteAsync(new byte[150 * 1024]);

        // 64 KiB fits beside the 200 KiB held; growing to 128 KiB does not.
        var error = await Assert.ThrowsAsync<InferenceException>(() => RequestBody.ReadAsync(context.Request, Limit, 100, budget, CancellationToken.None).AsTask());

        Assert.Equal(InferenceErrorKind.QueueFull, error.Kind);
        Assert.Contains("MaxInFlightRequestBytes", error.Message);
        Assert.Equal(200 * 1024, budget.Held);
    }

    [Fact]
    public async Task A_gzip_bomb_is_refused_413_before_it_decodes_far()
    {
        var budget = new InFlightBytes(0);
        var pipe = NewPipe();
        var bomb = Gzip(new byte[16 * 1024 * 1024]);
        var context = Request(pipe, declared: bomb.Length, encoding: "gzip");
        await pipe.Writer.WriteAsync(bomb);
        await pipe.Writer.CompleteAsync();

        var error = await Assert.ThrowsAsync<InferenceException>(() => RequestBody.ReadAsync(context.Request, Limit, 100, budget, CancellationToken.None).AsTask());

        Assert.Equal(InferenceErrorKind.TooLarge, error.Kind);
        Assert.Contains("decodes to more than 100 times its compressed size", error.Message);
        Assert.Equal(0, budget.Held);
    }

    [Fact]
    public async Task A_gzip_body_within_the_ratio_decodes()
    {
        var budget = new InFlightBytes(0);
        var pipe = NewPipe();
        var random = new Random(7);
        var data = new byte[300_000];
        random.NextBytes(data.AsSpan(0, 100_000)); // some 3:1
        var compressed = Gzip(data);
        var context = Request(pipe, declared: compressed.Length, encoding: "gzip");
        await pipe.Writer.WriteAsync(compressed);
        await pipe.Writer.CompleteAsync();

        using var body = await RequestBody.ReadAsync(context.Request, Limit, 100, budget, CancellationToken.None);

        Assert.Equal(data, body.Memory.ToArray());
    }

    /// <summary>A pipe that never makes its writer wait: the test writes, the body reader takes.</summary>
    private static Pipe NewPipe() => new(new PipeOptions(pauseWriterThreshold: 0));

    private static DefaultHttpContext Request(Pipe pipe, long declared, string? encoding = null)
    {
        var context = new DefaultHttpContext();
        context.Request.Method = "POST";
        context.Request.ContentLength = declared;
        context.Request.Body = pipe.Reader.AsStream();
        if (encoding is not null)
        {
            context.Request.Headers.ContentEncoding = encoding;
        }

        return context;
    }

    private static byte[] Gzip(byte[] data)
    {
        using var compressed = new MemoryStream();
        using (var gzip = new GZipStream(compressed, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            gzip.Write(data);
        }

        return compressed.ToArray();
    }

    /// <summary>Waits until the reader has taken what was written and stopped growing.</summary>
    private static async Task Settled(InFlightBytes budget)
    {
        long last = -1;
        for (var i = 0; i < 200; i++)
        {
            await Task.Delay(20);
            var held = budget.Held;
            if (held == last && held > 0)
            {
                return;
            }

            last = held;
        }
    }
}
