namespace MedServe.Hosting;

/// <summary>The "MedServe" configuration section (appsettings.json, MEDSERVE_* variables, command line).</summary>
public sealed class ServerOptions
{
    public const string Section = "MedServe";

    public string Host { get; set; } = "127.0.0.1";

    /// <summary>0 picks a free port (tests).</summary>
    public int HttpPort { get; set; } = 8000;

    /// <summary>Reserved for the gRPC frontend.</summary>
    public int GrpcPort { get; set; } = 8001;

    /// <summary>Holds everything the server writes; relative paths are against the working directory.</summary>
    public string DataDir { get; set; } = ".medserve";

    /// <summary>Defaults to &lt;DataDir&gt;/models.</summary>
    public string? ModelRepository { get; set; }

    /// <summary>Write the sample models into the repository when it does not exist yet.</summary>
    public bool ProvisionSamples { get; set; } = true;

    /// <summary>TLS from PEM files; both set turns HTTPS (and gRPC over TLS) on for both ports.</summary>
    public TlsOptions Tls { get; set; } = new();

    public Security.AuthOptions Auth { get; set; } = new();

    public Security.AuditOptions Audit { get; set; } = new();

    public Security.JournalSettings Journal { get; set; } = new();

    public Security.OutcomesOptions Outcomes { get; set; } = new();

    /// <summary>How long the queryable prediction log keeps predictions (the journal is separate).</summary>
    public MedServe.Predictions.PredictionsOptions Predictions { get; set; } = new();

    public Security.LimitsOptions Limits { get; set; } = new();

    public Security.EncryptionOptions Encryption { get; set; } = new();

    /// <summary>Where registry, keys, experiments, alerts and drift references live: SQLite files in the data dir, or a shared PostgreSQL.</summary>
    public MedServe.Storage.StoreOptions Store { get; set; } = new();

    /// <summary>A Redis the replicas share for per-key rate limits; none by default (each replica counts alone).</summary>
    public MedServe.Storage.RedisOptions Redis { get; set; } = new();

    public string ResolvedDataDir => Path.GetFullPath(DataDir);

    public string ResolvedModelRepository => Path.GetFullPath(ModelRepository ?? Path.Combine(ResolvedDataDir, "models"));
}

public sealed class TlsOptions
{
    /// <summary>PEM certificate (chain) file.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>PEM private key file.</summary>
    public string? KeyPath { get; set; }

    public bool Enabled => !string.IsNullOrEmpty(CertificatePath) && !string.IsNullOrEmpty(KeyPath);
}
