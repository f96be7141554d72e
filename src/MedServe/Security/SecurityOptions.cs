namespace MedServe.Security;

/// <summary>MedServe:Auth. On by default; off only by an explicit setting, and only on a loopback address.</summary>
public sealed class AuthOptions
{
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// A file holding the admin key to install when the key store is empty (a mounted Kubernetes
    /// Secret, made with <c>medserve keys generate</c>), instead of a random one written to the
    /// first replica's data dir. Ignored once any key exists.
    /// </summary>
    public string? AdminKeyFile { get; set; }

    public JwtOptions Jwt { get; set; } = new();
}

/// <summary>MedServe:Auth:Jwt. OIDC bearer tokens, validated by an authority's published keys or a local public key.</summary>
public sealed class JwtOptions
{
    /// <summary>An OIDC issuer whose discovery document gives the signing keys (https).</summary>
    public string? Authority { get; set; }

    /// <summary>A PEM public key (RSA or EC) that tokens must be signed with, instead of an authority.</summary>
    public string? SigningKeyPath { get; set; }

    /// <summary>The expected <c>iss</c>; required with a signing key, taken from the authority otherwise.</summary>
    public string? Issuer { get; set; }

    /// <summary>The expected <c>aud</c>; required unless <see cref="AllowAnyAudience"/>.</summary>
    public string? Audience { get; set; }

    /// <summary>
    /// Accept tokens of the issuer whatever their <c>aud</c>: only for an issuer that mints tokens
    /// for this server alone. Off by default; the start is refused without an audience otherwise.
    /// </summary>
    public bool AllowAnyAudience { get; set; }

    /// <summary>The claim holding the token's scopes (space-separated, or one claim per scope).</summary>
    public string ScopeClaim { get; set; } = "scope";

    public bool Enabled => !string.IsNullOrEmpty(Authority) || !string.IsNullOrEmpty(SigningKeyPath);
}

/// <summary>MedServe:Audit.</summary>
public sealed class AuditOptions
{
    /// <summary>Off only to measure what auditing costs (bench/), and only on loopback; a clinical deployment leaves it on.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>When the audit store cannot be written: true fails the request (no answer without a record); false answers and logs the failure.</summary>
    public bool FailClosed { get; set; } = true;

}

/// <summary>
/// MedServe:Journal: the inference journal, which holds the audit trail and the prediction log
/// (docs/security.md, "The journal"). Its signing key and anchor belong outside the data dir.
/// </summary>
public sealed class JournalSettings
{
    /// <summary>The segment folder; default &lt;DataDir&gt;/journal.</summary>
    public string? Folder { get; set; }

    /// <summary>
    /// Where the latest durable head is kept: a path an attacker with write access to the data
    /// dir alone cannot reach (another volume, another owner). Default &lt;DataDir&gt;/journal.anchor,
    /// which only detects truncation by someone who leaves the anchor alone: the server says so at start.
    /// </summary>
    public string? AnchorPath { get; set; }

    /// <summary>A PEM file with the ECDSA P-256 private key that signs checkpoints (outside the data dir).</summary>
    public string? SigningKeyPath { get; set; }

    /// <summary>The same key as PEM text, e.g. MEDSERVE_JOURNAL__SIGNING_KEY from a secret store.</summary>
    public string? SigningKey { get; set; }

    /// <summary>Inputs larger than this (bytes, all tensors together) are kept as digest and summary, unless a model's journal { max_input_bytes } says otherwise.</summary>
    public long MaxInputBytes { get; set; } = MedServe.Predictions.PredictionPayload.DefaultMaxInputBytes;

    /// <summary>Segments are preallocated to this size and roll when full.</summary>
    public long SegmentBytes { get; set; } = 64L << 20;

    /// <summary>Records waiting for their batch; beyond, audited requests are answered 503 with Retry-After.</summary>
    public int QueueCapacity { get; set; } = 65_536;

    /// <summary>fdatasync every batch. Off only to measure what durability costs (bench/).</summary>
    public bool Durable { get; set; } = true;

    /// <summary>Finished segments whose records are all older than this move to <see cref="ArchiveFolder"/> (checked hourly); null keeps them.</summary>
    public TimeSpan? ArchiveAfter { get; set; }

    /// <summary>Where archived segments go (another volume, cold storage); verify and export read them from there.</summary>
    public string? ArchiveFolder { get; set; }

    /// <summary>With a shared PostgreSQL: how often this replica copies its journal head there (for <c>medserve audit verify-replicas</c>).</summary>
    public TimeSpan HeadPublishInterval { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>MedServe:Limits. Each limit is answered with its own status and a JSON error.</summary>
public sealed class LimitsOptions
{
    /// <summary>Requests per second a key may make unless the key sets its own; 0 is unlimited.</summary>
    public int RequestsPerSecondPerKey { get; set; }

    /// <summary>A REST request still running after this is answered 504 (gRPC calls use their own deadlines).</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Headers per request; more are answered 431.</summary>
    public int MaxRequestHeaderCount { get; set; } = 64;

    /// <summary>Bytes of names and values across all headers; more are answered 431.</summary>
    public int MaxRequestHeadersBytes { get; set; } = 16 * 1024;

    /// <summary>
    /// Bytes that request bodies, and the tensors decoded from them, may hold across the server at
    /// once (MEDSERVE_LIMITS__MAX_IN_FLIGHT_REQUEST_BYTES). Bodies are counted as they arrive, not
    /// by their declared length; one that would pass the cap is answered 503 with Retry-After (gRPC
    /// UNAVAILABLE). 0 is no cap. By default 1 GiB, or an eighth of the memory the process may use
    /// where that is less (a container's limit counts). Leave room for the largest body twice over:
    /// a growing buffer briefly holds its old and new arrays.
    /// </summary>
    public long MaxInFlightRequestBytes { get; set; } = DefaultMaxInFlightRequestBytes();

    /// <summary>Requests one key (or token subject) may have in flight at once; more are answered 429 with Retry-After. 0 is no limit.</summary>
    public int MaxConcurrentRequestsPerKey { get; set; } = 512;

    /// <summary>
    /// Refused requests (401 and 403) a client address may cause per second, with a burst of five
    /// seconds' worth; past it the address is answered 429 before its credential is looked at, so a
    /// flood of bad credentials costs neither a key lookup nor a journal record. 0 is no limit.
    /// </summary>
    public int RefusalsPerSecondPerAddress { get; set; } = 20;

    public static long DefaultMaxInFlightRequestBytes()
    {
        const long Cap = 1L << 30;
        var available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        return available > 0 ? Math.Min(Cap, available / 8) : Cap;
    }
}

/// <summary>
/// MedServe:Encryption. The master keys that wrap the data keys of stored patient data: entries
/// <c>id:base64key</c> (the last is current; rotation appends one) from a file or the setting
/// itself (MEDSERVE_ENCRYPTION__MASTER_KEYS); neither creates secrets/master.keys on first start.
/// </summary>
/// <summary>MedServe:Outcomes: how outcomes meet their predictions.</summary>
public sealed class OutcomesOptions
{
    /// <summary>How far before its observed_at an outcome named by patient looks for that patient's latest prediction.</summary>
    public TimeSpan JoinWindow { get; set; } = TimeSpan.FromDays(30);
}

public sealed class EncryptionOptions
{
    public string? MasterKeyFile { get; set; }

    public string? MasterKeys { get; set; }
}
