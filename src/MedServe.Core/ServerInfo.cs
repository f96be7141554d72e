namespace MedServe;

/// <summary>What the server says of itself in server metadata, over REST and gRPC alike.</summary>
public static class ServerInfo
{
    public const string Name = "medserve";

    /// <summary>The protocol extensions MedServe implements, as Triton names them.</summary>
    public static readonly string[] Extensions =
        ["binary_tensor_data", "parameters", "model_repository", "model_configuration", "statistics"];

    public static string Version { get; } = typeof(ServerInfo).Assembly.GetName().Version?.ToString(3) ?? "0.1.0";
}
