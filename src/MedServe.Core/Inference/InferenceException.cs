namespace MedServe.Inference;

/// <summary>Why a request failed, in words a frontend maps to its own status codes.</summary>
public enum InferenceErrorKind
{
    /// <summary>The request is malformed or does not fit the model (HTTP 400, gRPC INVALID_ARGUMENT).</summary>
    InvalidArgument,

    /// <summary>No such model or version (HTTP 404, gRPC NOT_FOUND).</summary>
    NotFound,

    /// <summary>The model or server exists but cannot serve now (HTTP 503, gRPC UNAVAILABLE).</summary>
    Unavailable,

    /// <summary>The body is larger than the configured limit (HTTP 413, gRPC RESOURCE_EXHAUSTED).</summary>
    TooLarge,

    /// <summary>The model's queue, or the server's room for request bodies, is full: retry later (HTTP 503 with Retry-After, gRPC UNAVAILABLE).</summary>
    QueueFull,

    /// <summary>The request waited in the queue past its timeout (HTTP 503, gRPC DEADLINE_EXCEEDED).</summary>
    TimedOut,

    /// <summary>The client cancelled the request (HTTP 499 in logs, gRPC CANCELLED).</summary>
    Cancelled,

    /// <summary>The backend failed on a valid request (HTTP 500, gRPC INTERNAL).</summary>
    Internal,
}

/// <summary>
/// A failure with a message fit for the client: it names what was wrong and where, and never
/// carries tensor values (patient data).
/// </summary>
public sealed class InferenceException(InferenceErrorKind kind, string message, Exception? inner = null)
    : Exception(message, inner)
{
    public InferenceErrorKind Kind { get; } = kind;

    public static InferenceException Invalid(string message) => new(InferenceErrorKind.InvalidArgument, message);

    public static InferenceException NotFound(string message) => new(InferenceErrorKind.NotFound, message);

    public static InferenceException Unavailable(string message) => new(InferenceErrorKind.Unavailable, message);
}
