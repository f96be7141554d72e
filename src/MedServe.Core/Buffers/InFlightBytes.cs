namespace MedServe.Buffers;

/// <summary>
/// The bytes that request bodies and the tensors decoded from them hold right now, across the
/// server, against one cap (MedServe:Limits:MaxInFlightRequestBytes). Readers reserve as their
/// buffers grow, so a body that has sent 10 bytes holds a few KiB whatever it declared, and
/// release on every way out. One interlocked add per reservation and per release.
/// </summary>
/// <param name="limit">The cap in bytes; 0 or less is none.</param>
public sealed class InFlightBytes(long limit)
{
    private long _held;

    public long Limit { get; } = limit;

    public long Held => Volatile.Read(ref _held);

    /// <summary>Reserves <paramref name="bytes"/>, or nothing and false when they would take the total past the cap.</summary>
    public bool TryReserve(long bytes)
    {
        var held = Interlocked.Add(ref _held, bytes);
        if (Limit <= 0 || held <= Limit || bytes <= 0)
        {
            return true;
        }

        Interlocked.Add(ref _held, -bytes);
        return false;
    }

    public void Release(long bytes)
    {
        if (bytes != 0)
        {
            Interlocked.Add(ref _held, -bytes);
        }
    }

    /// <summary>The refusal a frontend answers with 503 and Retry-After (gRPC UNAVAILABLE).</summary>
    public Inference.InferenceException Refusal() => new(Inference.InferenceErrorKind.QueueFull,
        $"the server is holding its limit of {Limit} bytes of request bodies in flight (MedServe:Limits:MaxInFlightRequestBytes); retry shortly");
}
