using MedServe.Registry.Artifacts;

namespace MedServe.Tests.Support;

/// <summary>An object store in memory, whose uploads can be made to fail or to run a check first.</summary>
public sealed class MemoryObjectStore : IArtifactObjectStore
{
    private readonly Dictionary<string, byte[]> _blobs = new(StringComparer.Ordinal);

    public string Name => "memory";

    /// <summary>Runs before each upload stores anything; throw from it to fail the upload.</summary>
    public Func<string, Task>? BeforeUpload { get; set; }

    public int Count
    {
        get
        {
            lock (_blobs)
            {
                return _blobs.Count;
            }
        }
    }

    public Task<bool> ExistsAsync(string digest, CancellationToken cancellationToken = default)
    {
        lock (_blobs)
        {
            return Task.FromResult(_blobs.ContainsKey(digest));
        }
    }

    public async Task UploadAsync(string digest, string path, CancellationToken cancellationToken = default)
    {
        if (BeforeUpload is { } check)
        {
            await check(digest);
        }

        var bytes = await File.ReadAllBytesAsync(path, cancellationToken);
        lock (_blobs)
        {
            _blobs.TryAdd(digest, bytes);
        }
    }

    /// <summary>How many downloads were asked for.</summary>
    public int Downloads => _downloads;

    private int _downloads;

    public async Task<bool> DownloadAsync(string digest, Stream destination, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _downloads);
        byte[]? bytes;
        lock (_blobs)
        {
            _blobs.TryGetValue(digest, out bytes);
        }

        if (bytes is null)
        {
            return false;
        }

        await destination.WriteAsync(bytes, cancellationToken);
        return true;
    }
}
