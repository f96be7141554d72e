using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using MedServe.Alerts;
using Microsoft.AspNetCore.Http;

namespace MedServe.IntegrationTests.Support;

/// <summary>A local webhook receiver: records every delivery; answers 500 to the first <c>failFirst</c>.</summary>
internal sealed class Receiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<Delivery> _deliveries = new();
    private int _failures;

    private Receiver(WebApplication app, int failFirst)
    {
        _app = app;
        _failures = failFirst;
    }

    public string Url => _app.Urls.First() + "/hook";

    public sealed record Delivery(byte[] Body, string Timestamp, string Signature, HttpStatusCode Answered);

    public static async Task<Receiver> StartAsync(int failFirst)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var receiver = new Receiver(app, failFirst);
        app.MapPost("/hook", async (HttpContext context) =>
        {
            using var buffer = new MemoryStream();
            await context.Request.Body.CopyToAsync(buffer);
            HttpStatusCode status;

            // The answer and the place in the queue are decided together: concurrent deliveries must
            // not record the failed one after a later success.
            lock (receiver._deliveries)
            {
                status = --receiver._failures >= 0 ? HttpStatusCode.InternalServerError : HttpStatusCode.OK;
                receiver._deliveries.Enqueue(new Delivery(buffer.ToArray(), context.Request.Headers[WebhookSender.TimestampHeader].ToString(),
                    context.Request.Headers[WebhookSender.SignatureHeader].ToString(), status));
            }

            context.Response.StatusCode = (int)status;
        });
        await app.StartAsync();
        return receiver;
    }

    /// <summary>Waits (bounded) until this many deliveries have arrived.</summary>
    public async Task<List<Delivery>> WaitForAsync(int count)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (_deliveries.Count < count)
        {
            await Task.Delay(20, timeout.Token);
        }

        return [.. _deliveries];
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
