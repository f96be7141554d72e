using System.Runtime.InteropServices;

namespace MedServe.Files;

/// <summary>
/// Every path a request, a config or a model names is hostile. These helpers canonicalise a path
/// (symlinks resolved in every component, as the kernel will when the file is opened) and confine
/// it to a root: a name that escapes by being absolute, by <c>..</c> or through a symlink is refused.
/// Callers word their own refusals, never echoing a server path.
/// </summary>
public static partial class PathConfinement
{
    /// <summary>The canonical absolute path of an existing file or folder; null when it does not exist or cannot be resolved.</summary>
    public static string? RealPath(string path)
    {
        if (path.Length == 0 || path.Contains('\0'))
        {
            return null;
        }

        var full = Path.GetFullPath(path);
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            return File.Exists(full) || Directory.Exists(full) ? full : null;
        }

        var resolved = Realpath(full, IntPtr.Zero);
        if (resolved == IntPtr.Zero)
        {
            return null;
        }

        try
        {
            return Marshal.PtrToStringUTF8(resolved);
        }
        finally
        {
            Free(resolved);
        }
    }

    /// <summary>Whether canonical <paramref name="path"/> is <paramref name="root"/> itself or lies below it (both canonical).</summary>
    public static bool IsInside(string root, string path)
    {
        var prefix = root.EndsWith('/') ? root : root + "/";
        return path == root.TrimEnd('/') || path.StartsWith(prefix, StringComparison.Ordinal);
    }

    /// <summary>
    /// Whether <paramref name="name"/> is a plain relative path: not empty, not rooted, no <c>..</c> or
    /// empty segment, no backslash, NUL or control character. The grammar for every file name a
    /// config or a model gives.
    /// </summary>
    public static bool IsPlainRelative(string name, bool allowSubfolders)
    {
        if (name.Length is 0 or > 255 || Path.IsPathRooted(name) || name.Contains('\\') || name.Any(char.IsControl))
        {
            return false;
        }

        var segments = name.Split('/');
        if (!allowSubfolders && segments.Length > 1)
        {
            return false;
        }

        return segments.All(s => s.Length > 0 && s != "." && s != "..");
    }

    /// <summary>
    /// The canonical path of <paramref name="relative"/> under <paramref name="root"/>, symlinks
    /// followed, or null when it is not a plain relative name, does not exist, or resolves outside.
    /// </summary>
    public static string? ResolveInside(string root, string relative, bool allowSubfolders = true)
    {
        if (!IsPlainRelative(relative, allowSubfolders) || RealPath(root) is not { } canonicalRoot)
        {
            return null;
        }

        return RealPath(Path.Combine(canonicalRoot, relative)) is { } resolved && IsInside(canonicalRoot, resolved) && resolved != canonicalRoot
            ? resolved
            : null;
    }

    [LibraryImport("libc", EntryPoint = "realpath", StringMarshalling = StringMarshalling.Utf8)]
    private static partial IntPtr Realpath(string path, IntPtr resolved);

    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void Free(IntPtr pointer);
}
