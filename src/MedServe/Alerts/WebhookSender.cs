using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Threading.Channels;

namespace MedServe.Alerts;

/// <summary>
/// Delivers alert events to the configured webhooks: a JSON body, signed with
/// <c>X-MedServe-Signature: sha256=HEX(HMAC-SHA256(secret, timestamp + "." + body))</c> beside
/// <c>X-MedServe-Timestamp</c> (Unix seconds, so a receiver can refuse a replay), retried with a
/// doubling back-off until a 2xx or the attempts run out. Deliveries never block evaluation.
/// </summary>
public sealed partial class WebhookSender : BackgroundService
{
    public const string SignatureHeader = "X-MedServe-Signature";
    public const string TimestampHeader = "X-MedServe-Timestamp";

    private readonly Channel<(WebhookOptions Webhook, byte[] Body)> _queue = Channel.CreateBounded<(WebhookOptions, byte[])>(
        new BoundedChannelOptions(10_000) { FullMode = BoundedChannelFullMode.DropOldest });

    private readonly AlertOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<WebhookSender> _logger;
    private readonly HttpClient _client = new() { Timeout = TimeSpan.FromSeconds(10) };
    private int _pending;

    public WebhookSender(Microsoft.Extensions.Options.IOptions<AlertOptions> options, TimeProvider time, ILogger<WebhookSender> logger)
    {
        _options = options.Value;
        _time = time;
        _logger = logger;
        foreach (var webhook in _options.Webhooks)
        {
            if (string.IsNullOrWhiteSpace(webhook.Name) || !Uri.TryCreate(webhook.Url, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
            {
                throw new InvalidOperationException($"MedServe:Alerts:Webhooks: '{webhook.Name}' needs a name and an absolute http or https URL");
            }

            if (webhook.Secret is not { Length: >= 16 })
            {
                throw new InvalidOperationException($"MedServe:Alerts:Webhooks: '{webhook.Name}' needs a Secret of at least 16 characters (its events are signed with it)");
            }
        }
    }

    /// <summary>Deliveries not yet answered or given up (tests wait for 0).</summary>
    public int Pending => Volatile.Read(ref _pending);

    public IReadOnlyCollection<string> Names => [.. _options.Webhooks.Select(w => w.Name)];

    /// <summary>Queues the event for each webhook named (all of them when none is).</summary>
    public void Enqueue(IReadOnlyList<string> names, byte[] body)
    {
        foreach (var webhook in _options.Webhooks.Where(w => names.Count == 0 || names.Contains(w.Name)))
        {
            Interlocked.Increment(ref _pending);
            if (!_queue.Writer.TryWrite((webhook, body)))
            {
                Interlocked.Decrement(ref _pending);
            }
        }
    }

    /// <summary>The signature a receiver recomputes: HMAC-SHA256 over "{timestamp}.{body}".</summary>
    public static string Sign(string secret, string timestamp, byte[] body)
    {
        var message = new byte[timestamp.Length + 1 + body.Length];
        Encoding.ASCII.GetBytes(timestamp, message);
        message[timestamp.Length] = (byte)'.';
        body.CopyTo(message, timestamp.Length + 1);
        return "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), message));
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var (webhook, body) in _queue.Reader.ReadAllAsync(stoppingToken).ConfigureAwait(false))
            {
                _ = DeliverAsync(webhook, body, stoppingToken);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    private async Task DeliverAsync(WebhookOptions webhook, byte[] body, CancellationToken stoppingToken)
    {
        try
        {
            var delay = _options.RetryBaseDelay;
            for (var attempt = 1; attempt <= _options.MaxAttempts; attempt++)
            {
                var timestamp = _time.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
                using var request = new HttpRequestMessage(HttpMethod.Post, webhook.Url) { Content = new ByteArrayContent(body) };
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                request.Headers.Add(TimestampHeader, timestamp);
                request.Headers.Add(SignatureHeader, Sign(webhook.Secret!, timestamp, body));
                string failure;
                try
                {
                    using var response = await _client.SendAsync(request, stoppingToken).ConfigureAwait(false);
                    if (response.IsSuccessStatusCode)
                    {
                        return;
                    }

                    failure = $"HTTP {(int)response.StatusCode}";
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !stoppingToken.IsCancellationRequested)
                {
                    failure = e.GetType().Name;
                }

                if (attempt == _options.MaxAttempts)
                {
                    LogGaveUp(_logger, webhook.Name, attempt, failure);
                    return;
                }

                LogRetrying(_logger, webhook.Name, attempt, failure, delay.TotalSeconds);
                await Task.Delay(delay, _time, stoppingToken).ConfigureAwait(false);
                delay *= 2;
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
        finally
        {
            Interlocked.Decrement(ref _pending);
        }
    }

    public override void Dispose()
    {
        _client.Dispose();
        base.Dispose();
    }

    [LoggerMessage(EventId = 511, Level = LogLevel.Warning, Message = "Webhook {Webhook}: attempt {Attempt} failed ({Failure}); retrying in {Seconds} s")]
    private static partial void LogRetrying(ILogger logger, string webhook, int attempt, string failure, double seconds);

    [LoggerMessage(EventId = 512, Level = LogLevel.Error, Message = "Webhook {Webhook}: gave up after {Attempt} attempts ({Failure})")]
    private static partial void LogGaveUp(ILogger logger, string webhook, int attempt, string failure);
}
