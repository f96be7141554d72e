using System.Runtime.InteropServices;

namespace MedServe.Hosting;

/// <summary>
/// Loading a model builds a throwaway session to read its signature and parses large graphs;
/// glibc keeps the freed pages in its heaps. One trim after the startup load gives them back
/// (measured in docs/performance.md).
/// </summary>
internal static partial class NativeMemory
{
    public static void Trim()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        try
        {
            MallocTrim(0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc (musl, for one): nothing to trim.
        }
    }

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);
}
