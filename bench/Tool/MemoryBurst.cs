using System.IO.Compression;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;

namespace MedServe.Bench;

/// <summary>
/// The memory attacks bench/memory-burst.sh measures the server's resident memory under:
/// connections that declare a large body and stall, and a burst of gzip bombs.
/// </summary>
internal static class MemoryBurst
{
    /// <summary>
    /// Opens <paramref name="connections"/> raw connections, each declaring a body of
    /// <paramref name="declared"/> bytes and sending <paramref name="initial"/> of them, then
    /// trickling 1 KiB a second (above Kestrel's minimum data rate, so the server keeps them) for
    /// <paramref name="seconds"/>; then closes them all and prints what the server answered.
    /// </summary>
    public static async Task<int> StallAsync(Uri server, string key, int connections, long declared, int initial, double seconds)
    {
        var head = Encoding.ASCII.GetBytes(
            $"POST /v2/models/risk/infer HTTP/1.1\r\nHost: {server.Authority}\r\nAuthorization: Bearer {key}\r\n" +
            $"Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n");
        var sockets = new List<Socket>();
        for (var i = 0; i < connections; i++)
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(server.Host, server.Port);
            await socket.SendAsync(head);
            await SendFillerAsync(socket, initial);
            sockets.Add(socket);
        }

        Console.WriteLine($"stall: {connections} connections open, each declaring {declared} bytes and sending {initial}");
        var end = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < end)
        {
            await Task.Delay(1000);
            foreach (var socket in sockets)
            {
                try
                {
                    await SendFillerAsync(socket, 1024);
                }
                catch (SocketException)
                {
                    // The server answered and closed it; counted below.
                }
            }
        }

        var answers = new Dictionary<string, int>();
        foreach (var socket in sockets)
        {
            var status = "no answer";
            if (socket.Available > 0)
            {
                var buffer = new byte[Math.Min(socket.Available, 4096)];
                var read = socket.Receive(buffer);
                var text = Encoding.ASCII.GetString(buffer, 0, read);
                status = text.Length >= 12 ? text[..12] : text;
            }

            answers[status] = answers.GetValueOrDefault(status) + 1;
            socket.Dispose();
        }

        Console.WriteLine("stall: closed; answers: " + string.Join(", ", answers.Select(a => $"{a.Key} x{a.Value}")));
        return 0;
    }

    /// <summary>Sends <paramref name="connections"/> gzip bombs at once: <paramref name="decoded"/> zero bytes, compressed.</summary>
    public static async Task<int> BombAsync(Uri server, string key, int connections, int decoded)
    {
        using var compressed = new MemoryStream();
        using (var gzip = new GZipStream(compressed, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            gzip.Write(new byte[decoded]);
        }

        var body = compressed.ToArray();
        using var client = new HttpClient { BaseAddress = server, Timeout = TimeSpan.FromMinutes(2) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var statuses = await Task.WhenAll(Enumerable.Range(0, connections).Select(async _ =>
        {
            var content = new ByteArrayContent(body);
            content.Headers.ContentEncoding.Add("gzip");
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            try
            {
                using var response = await client.PostAsync("/v2/models/risk/infer", content);
                return ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            catch (HttpRequestException e)
            {
                return e.GetType().Name;
            }
        }));
        Console.WriteLine($"bomb: {connections} bodies of {body.Length} bytes decoding to {decoded}; answers: " +
            string.Join(", ", statuses.GroupBy(s => s).Select(g => $"{g.Key} x{g.Count()}")));
        return 0;
    }

    private static async Task SendFillerAsync(Socket socket, int count)
    {
        var chunk = new byte[Math.Min(count, 64 * 1024)];
        Array.Fill(chunk, (byte)' ');
        for (var sent = 0; sent < count; sent += chunk.Length)
        {
            await socket.SendAsync(chunk.AsMemory(0, Math.Min(chunk.Length, count - sent)));
        }
    }
}
