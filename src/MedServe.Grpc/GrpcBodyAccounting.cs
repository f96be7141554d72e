using System.Buffers;
using System.IO.Pipelines;
using Grpc.Core;
using MedServe.Buffers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;

namespace MedServe.Grpc;

/// <summary>
/// grpc-dotnet buffers a message until it has all of it (up to MaxReceiveMessageSize), in the
/// request's pipe: a stream that declares 60 MiB and stalls holds what it sent, as a REST body
/// does. This counts those bytes in <see cref="InFlightBytes"/> as they arrive, and past the
/// cap fails the call with UNAVAILABLE. Costs a gRPC call one small object; REST requests nothing.
/// </summary>
public static class GrpcBodyAccounting
{
    public static IApplicationBuilder UseGrpcBodyAccounting(this IApplicationBuilder app)
    {
        var budget = app.ApplicationServices.GetRequiredService<InFlightBytes>();
        return app.Use((context, next) =>
            context.Request.ContentType is { } type && type.StartsWith("application/grpc", StringComparison.Ordinal)
                && context.Features.Get<IRequestBodyPipeFeature>() is { } body
                ? CountedAsync(context, next, body, budget)
                : next(context));
    }

    private static async Task CountedAsync(HttpContext context, RequestDelegate next, IRequestBodyPipeFeature body, InFlightBytes budget)
    {
        var reader = new CountedBodyReader(body.Reader, budget);
        context.Features.Set<IRequestBodyPipeFeature>(reader);
        try
        {
            await next(context).ConfigureAwait(false);
        }
        finally
        {
            reader.ReleaseAll();
            context.Features.Set(body);
        }
    }

    /// <summary>Holds a reservation for the bytes the reader has seen and not yet consumed.</summary>
    internal sealed class CountedBodyReader(PipeReader inner, InFlightBytes budget) : PipeReader, IRequestBodyPipeFeature
    {
        private ReadOnlySequence<byte> _seen;
        private long _held;

        PipeReader IRequestBodyPipeFeature.Reader => this;

        public long Held => Volatile.Read(ref _held);

        public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default) =>
            Track(await inner.ReadAsync(cancellationToken).ConfigureAwait(false));

        public override bool TryRead(out ReadResult result)
        {
            if (!inner.TryRead(out result))
            {
                return false;
            }

            result = Track(result);
            return true;
        }

        public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
        {
            var left = _seen.Slice(consumed).Length;
            _seen = default;
            inner.AdvanceTo(consumed, examined);
            Hold(left);
        }

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null)
        {
            inner.Complete(exception);
            ReleaseAll();
        }

        public override ValueTask CompleteAsync(Exception? exception = null)
        {
            ReleaseAll();
            return inner.CompleteAsync(exception);
        }

        public void ReleaseAll() => budget.Release(Interlocked.Exchange(ref _held, 0));

        private ReadResult Track(ReadResult result)
        {
            var length = result.Buffer.Length;
            if (length > _held && !budget.TryReserve(length - _held))
            {
                inner.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                throw new RpcException(new Status(StatusCode.Unavailable, budget.Refusal().Message));
            }

            if (length < _held)
            {
                budget.Release(_held - length);
            }

            _held = length;
            _seen = result.Buffer;
            return result;
        }

        private void Hold(long bytes)
        {
            if (bytes < _held)
            {
                budget.Release(_held - bytes);
                _held = bytes;
            }
        }
    }
}
