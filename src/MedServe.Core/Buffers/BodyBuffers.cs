using System.Buffers;
using System.Numerics;

namespace MedServe.Buffers;

/// <summary>
/// Arrays for request bodies, decoded tensors and batches. Up to 1 MiB they come from
/// <see cref="ArrayPool{T}.Shared"/> (reused, cheap). Larger ones come from a small pool of our
/// own that keeps at most <see cref="KeptLimit"/> bytes between uses and lets the GC have the
/// rest: the shared pool would keep every array of a burst (30 bodies of 64 MiB) for as long
/// as it likes. After a burst has let go of 256 MiB or more, one collection 2 s after the last
/// (and at most one every 30 s) gives that memory back to the system.
/// </summary>
public static class BodyBuffers
{
    /// <summary>Arrays up to this size come from the shared pool.</summary>
    public const int SharedLimit = 1024 * 1024;

    /// <summary>The most bytes of large arrays kept for reuse.</summary>
    public const long KeptLimit = 64L * 1024 * 1024;

    /// <summary>The largest array kept for reuse; larger ones are allocated at their size each time.</summary>
    private const int LargestKept = 64 * 1024 * 1024;

    /// <summary>Large arrays let go of, since the last collection, that make one worth it.</summary>
    private const long CollectAfter = 256L * 1024 * 1024;

    /// <summary>The quiet after the last large array is let go before that collection.</summary>
    private static readonly TimeSpan CollectDelay = TimeSpan.FromSeconds(2);

    /// <summary>The least time between two such collections, whatever is dropped.</summary>
    private static readonly TimeSpan CollectInterval = TimeSpan.FromSeconds(30);

    private static readonly Lock Gate = new();

    // One stack per power of two from 2 MiB to LargestKept.
    private static readonly Stack<byte[]>[] Kept = Enumerable.Range(0, BitOperations.Log2(LargestKept) - BitOperations.Log2(SharedLimit)).Select(_ => new Stack<byte[]>()).ToArray();

    private static readonly Timer Collector = new(_ => Collect(), null, Timeout.Infinite, Timeout.Infinite);

    private static long s_keptBytes;

    private static long s_dropped;

    private static long s_lastCollect = long.MinValue / 2;

    /// <summary>Bytes of large arrays kept for reuse now (at most <see cref="KeptLimit"/>).</summary>
    internal static long KeptBytes
    {
        get
        {
            lock (Gate)
            {
                return s_keptBytes;
            }
        }
    }

    /// <summary>The length of the array <see cref="Rent"/> gives for <paramref name="size"/> bytes.</summary>
    public static int CapacityFor(int size) => size switch
    {
        <= 16 => 16,
        <= LargestKept => (int)BitOperations.RoundUpToPowerOf2((uint)size),
        _ => size,
    };

    /// <summary>An array of <see cref="CapacityFor"/>(<paramref name="size"/>) bytes, not cleared; give it back with <see cref="Return"/>.</summary>
    public static byte[] Rent(int size)
    {
        if (size <= SharedLimit)
        {
            return ArrayPool<byte>.Shared.Rent(Math.Max(size, 16));
        }

        var length = CapacityFor(size);
        if (length <= LargestKept)
        {
            lock (Gate)
            {
                var stack = Kept[Class(length)];
                if (stack.Count > 0)
                {
                    s_keptBytes -= length;
                    return stack.Pop();
                }
            }
        }

        return GC.AllocateUninitializedArray<byte>(length);
    }

    /// <summary>Takes back an array from <see cref="Rent"/>.</summary>
    public static void Return(byte[] array)
    {
        var length = array.Length;
        if (length <= SharedLimit)
        {
            ArrayPool<byte>.Shared.Return(array);
            return;
        }

        if (length <= LargestKept && BitOperations.IsPow2(length))
        {
            lock (Gate)
            {
                if (s_keptBytes + length <= KeptLimit)
                {
                    Kept[Class(length)].Push(array);
                    s_keptBytes += length;
                    return;
                }
            }
        }

        // Left to the GC. Once a burst has dropped enough, collect when it has been quiet a moment.
        if (Interlocked.Add(ref s_dropped, length) >= CollectAfter)
        {
            Collector.Change(CollectDelay, Timeout.InfiniteTimeSpan);
        }
    }

    private static int Class(int length) => BitOperations.Log2((uint)length) - BitOperations.Log2(SharedLimit) - 1;

    private static void Collect()
    {
        var since = Environment.TickCount64 - Interlocked.Read(ref s_lastCollect);
        if (since < (long)CollectInterval.TotalMilliseconds)
        {
            Collector.Change(TimeSpan.FromMilliseconds(CollectInterval.TotalMilliseconds - since), Timeout.InfiniteTimeSpan);
            return;
        }

        Interlocked.Exchange(ref s_dropped, 0);
        Interlocked.Exchange(ref s_lastCollect, Environment.TickCount64);

        // The dropped arrays are on the large object heap. Only an aggressive collection gives
        // their regions back to the system (a forced one, blocking or not, keeps them committed:
        // measured in bench/memory-burst.sh). It blocks and compacts, as the one after the
        // startup load does; it comes at most once every 30 s, 2 s after a burst is over.
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
    }
}
