using System.IO.Compression;
using System.Net;
using System.Net.Sockets;
using System.Text;
using MedServe.Buffers;
using MedServe.IntegrationTests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace MedServe.IntegrationTests;

/// <summary>
/// One key must not exhaust the server's memory: bodies are paid for as they arrive, under one
/// server-wide cap, compressed bodies cannot decode without bound, and a key has only so many
/// requests in flight. Raw sockets declare large bodies and stall, as an attacker would.
/// </summary>
public sealed class MemoryLimitsTests
{
    private const string RiskBody = """{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}]}""";

    private const int KiB = 1024;

    [Fact]
    public async Task Stalled_bodies_hold_what_they_sent_and_past_the_servers_cap_a_body_is_answered_503()
    {
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>
        {
            ["MedServe:Limits:MaxInFlightRequestBytes"] = (384 * KiB).ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        var budget = server.Services.GetRequiredService<InFlightBytes>();

        // Each declares 60 MiB and sends 100 KiB: it holds a 128 KiB buffer, not 60 MiB.
        using var first = await StallAsync(server, 60 * KiB * KiB, 100 * KiB);
        await UntilAsync(() => budget.Held == 128 * KiB, () => $"held {budget.Held}");
        using var second = await StallAsync(server, 60 * KiB * KiB, 100 * KiB);
        await UntilAsync(() => budget.Held == 256 * KiB, () => $"held {budget.Held}");

        // The third fits its first 64 KiB, but growing to 128 KiB would pass 384 KiB.
        using (var third = await StallAsync(server, 60 * KiB * KiB, 100 * KiB))
        {
            var answer = await ResponseAsync(third);
            Assert.StartsWith("HTTP/1.1 503", answer);
            Assert.Contains("Retry-After: 1", answer);
            Assert.Contains("\"error\":\"the server is holding its limit of 393216 bytes of request bodies in flight (MedServe:Limits:MaxInFlightRequestBytes); retry shortly\"", answer);
        }

        Assert.Equal(256 * KiB, budget.Held);

        // The stalled clients go away: what they held is released.
        first.Dispose();
        second.Dispose();
        await UntilAsync(() => budget.Held == 0, () => $"held {budget.Held}");
        using var client = server.Client(server.AdminKey);
        using var served = await client.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody));
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Equal(0, budget.Held);
    }

    [Fact]
    public async Task A_gzip_bomb_is_answered_413_and_the_server_goes_on()
    {
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>());
        using var client = server.Client(server.AdminKey);
        using var compressed = new MemoryStream();
        using (var gzip = new GZipStream(compressed, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            gzip.Write(new byte[1024 * 1024]); // some 1 KB on the wire
        }

        var content = new ByteArrayContent(compressed.ToArray());
        content.Headers.ContentEncoding.Add("gzip");
        using var refused = await client.PostAsync("/v2/models/risk/infer", content);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, refused.StatusCode);
        Assert.Equal("the gzip body decodes to more than 100 times its compressed size (MedServe:Http:MaxDecompressionRatio); refused as a decompression bomb",
            (await ServerFixture.JsonAsync(refused)).GetProperty("error").GetString());
        Assert.Equal(0, server.Services.GetRequiredService<InFlightBytes>().Held);
        using var served = await client.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody));
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
    }

    [Fact]
    public async Task A_key_past_its_concurrent_requests_is_answered_429_and_other_keys_are_not()
    {
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>
        {
            ["MedServe:Limits:MaxConcurrentRequestsPerKey"] = "2",
        });
        var budget = server.Services.GetRequiredService<InFlightBytes>();
        using var admin = server.Client(server.AdminKey);
        using var created = await admin.PostAsync("/v1/keys", new StringContent("""{"name":"other","scopes":["infer"]}"""));
        using var other = server.Client((await ServerFixture.JsonAsync(created)).GetProperty("key").GetString());

        // Two requests of the admin key whose bodies stall: both are in the handler, reading.
        using var first = await StallAsync(server, 1000, 10);
        using var second = await StallAsync(server, 1000, 10);
        await UntilAsync(() => budget.Held == 2 * 1024, () => $"held {budget.Held}");

        using (var third = await admin.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody)))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, third.StatusCode);
            Assert.Equal("1", third.Headers.GetValues("Retry-After").Single());
            Assert.Equal("concurrency limit exceeded: this key may have 2 requests in flight (MedServe:Limits:MaxConcurrentRequestsPerKey)",
                (await ServerFixture.JsonAsync(third)).GetProperty("error").GetString());
        }

        using (var others = await other.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody)))
        {
            Assert.Equal(HttpStatusCode.OK, others.StatusCode);
        }

        // Once the stalled ones end, the key's permits are back.
        first.Dispose();
        second.Dispose();
        await UntilAsync(() => budget.Held == 0, () => $"held {budget.Held}");
        var status = HttpStatusCode.TooManyRequests;
        for (var i = 0; i < 50 && status == HttpStatusCode.TooManyRequests; i++)
        {
            using var again = await admin.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody));
            status = again.StatusCode;
            await Task.Delay(status == HttpStatusCode.TooManyRequests ? 100 : 0);
        }

        Assert.Equal(HttpStatusCode.OK, status);
    }

    [Fact]
    public async Task A_stalled_grpc_message_holds_what_it_sent_and_past_the_cap_the_call_is_unavailable()
    {
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>
        {
            ["MedServe:Limits:MaxInFlightRequestBytes"] = (1024 * KiB).ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        var budget = server.Services.GetRequiredService<InFlightBytes>();
        var stall = new TaskCompletionSource();

        // Each call on a connection of its own, declaring a 60 MiB message and sending 600 KiB of it.
        using var firstClient = H2cClient();
        var first = firstClient.SendAsync(GrpcCall(server, 60 * KiB * KiB, 600 * KiB, stall.Task), HttpCompletionOption.ResponseHeadersRead);
        await UntilAsync(() => budget.Held == 600 * KiB + 5, () => $"held {budget.Held}, call {first.Status} {first.Exception?.GetBaseException().Message} {(first.IsCompletedSuccessfully ? first.Result.ToString() : "")}");

        using var secondClient = H2cClient();
        using (var second = await secondClient.SendAsync(GrpcCall(server, 60 * KiB * KiB, 600 * KiB, stall.Task), HttpCompletionOption.ResponseHeadersRead))
        {
            Assert.Equal("14", second.Headers.GetValues("grpc-status").Single()); // UNAVAILABLE
            Assert.Contains("MaxInFlightRequestBytes", Uri.UnescapeDataString(second.Headers.GetValues("grpc-message").Single()));
        }

        Assert.Equal(600 * KiB + 5, budget.Held);
        Assert.False(first.IsCompleted);

        // The client gives up its upload (the stream is reset): what its call held is released.
        stall.SetException(new IOException("the client gives up"));
        await Assert.ThrowsAnyAsync<Exception>(() => first);
        await UntilAsync(() => budget.Held == 0, () => $"held {budget.Held}");
    }

    [Fact]
    public async Task A_management_json_body_is_held_to_1_MiB()
    {
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>());
        using var client = server.Client(server.AdminKey);
        var large = "{\"ready\":true,\"pad\":\"" + new string('a', 2 * 1024 * 1024) + "\"}";

        // Expect: 100-continue lets the server refuse on Content-Length before the body is sent.
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v2/repository/index") { Content = new StringContent(large) };
        request.Headers.ExpectContinue = true;
        using var refused = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Equal("the request body is above 1048576 bytes, the limit for this endpoint", (await ServerFixture.JsonAsync(refused)).GetProperty("error").GetString());
        using var index = await client.PostAsync("/v2/repository/index", new StringContent("{\"ready\":true}"));
        Assert.Equal(HttpStatusCode.OK, index.StatusCode);
    }

    /// <summary>A raw connection that declares <paramref name="declared"/> bytes of body, sends <paramref name="sent"/> and stalls.</summary>
    private static async Task<Socket> StallAsync(RunningServer server, long declared, int sent)
    {
        var address = server.HttpAddress;
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(address.Host, address.Port);
        var head = $"POST /v2/models/risk/infer HTTP/1.1\r\nHost: {address.Authority}\r\nAuthorization: Bearer {server.AdminKey}\r\n" +
            $"Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n";
        await SendAllAsync(socket, Encoding.ASCII.GetBytes(head));
        await SendAllAsync(socket, new byte[sent]);
        return socket;
    }

    private static HttpClient H2cClient() => new();

    /// <summary>A ModelInfer call whose one message declares <paramref name="declared"/> bytes, sends <paramref name="sent"/> and stalls.</summary>
    private static HttpRequestMessage GrpcCall(RunningServer server, int declared, int sent, Task stall)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(server.GrpcAddress, "/inference.GRPCInferenceService/ModelInfer"))
        {
            Content = new StallingContent(declared, sent, stall),
            Version = HttpVersion.Version20, // h2c, as gRPC clients speak it without TLS
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Headers.TryAddWithoutValidation("te", "trailers");
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", server.AdminKey);
        request.Content.Headers.TryAddWithoutValidation("Content-Type", "application/grpc");
        return request;
    }

    private static async Task SendAllAsync(Socket socket, ReadOnlyMemory<byte> data)
    {
        while (!data.IsEmpty)
        {
            data = data[await socket.SendAsync(data)..];
        }
    }

    /// <summary>The server's answer on a raw connection: status line, headers and body, as text.</summary>
    private static async Task<string> ResponseAsync(Socket socket)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var received = new MemoryStream();
        var buffer = new byte[4096];
        while (true)
        {
            var read = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
            if (read == 0)
            {
                break;
            }

            received.Write(buffer, 0, read);
            var text = Encoding.UTF8.GetString(received.ToArray());
            var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            var length = text.Split("\r\n").FirstOrDefault(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
            if (end >= 0 && length is not null && text.Length - end - 4 >= int.Parse(length["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture))
            {
                return text;
            }
        }

        return Encoding.UTF8.GetString(received.ToArray());
    }

    private static async Task UntilAsync(Func<bool> condition, Func<string> state)
    {
        for (var i = 0; i < 200 && !condition(); i++)
        {
            await Task.Delay(50);
        }

        Assert.True(condition(), state());
    }

    /// <summary>A gRPC frame header declaring <paramref name="declared"/> bytes, then <paramref name="sent"/> of them, then nothing until <paramref name="stall"/> ends.</summary>
    private sealed class StallingContent(int declared, int sent, Task stall) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            var header = new byte[5];
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(1), declared);
            await stream.WriteAsync(header);
            await stream.WriteAsync(new byte[sent]);
            await stream.FlushAsync();
            await stall;
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
