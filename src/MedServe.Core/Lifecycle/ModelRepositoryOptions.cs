namespace MedServe.Lifecycle;

public sealed class ModelRepositoryOptions
{
    /// <summary>The repository folder (Triton's layout).</summary>
    public string Path { get; set; } = "models";

    /// <summary>max_batch_size given to a model without config whose tensors all start with a dynamic dimension (Triton's default is 4).</summary>
    public int DefaultMaxBatchSize { get; set; } = 4;

    /// <summary>
    /// Requests a model version may hold waiting (per priority level) when its config sets no
    /// max_queue_size: Triton's 0 means unbounded, which lets a flood grow the heap without end.
    /// Beyond it the answer is 503 with Retry-After. 0 here restores Triton's unbounded queue.
    /// </summary>
    public int DefaultMaxQueueSize { get; set; } = 4096;

    /// <summary>How long an unload or a shutdown lets queued requests run before failing the rest.</summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(30);
}
