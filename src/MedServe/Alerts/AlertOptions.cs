namespace MedServe.Alerts;

/// <summary>MedServe:Alerts: how often rules are evaluated, and the webhooks events go to (named in config, never by a request).</summary>
public sealed class AlertOptions
{
    public bool Enabled { get; set; } = true;

    /// <summary>How often the background loop evaluates every rule (and samples the serving counters).</summary>
    public TimeSpan Interval { get; set; } = TimeSpan.FromSeconds(15);

    public List<WebhookOptions> Webhooks { get; set; } = [];

    /// <summary>Attempts per event and webhook; the wait doubles from <see cref="RetryBaseDelay"/> between them.</summary>
    public int MaxAttempts { get; set; } = 6;

    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Events kept for GET /v1/alerts.</summary>
    public int EventsKept { get; set; } = 1000;
}

/// <summary>A webhook: its name (rules name it), its URL (http or https), and the secret its HMAC-SHA256 signature is keyed with.</summary>
public sealed class WebhookOptions
{
    public string Name { get; set; } = "";

    public string Url { get; set; } = "";

    public string? Secret { get; set; }
}
