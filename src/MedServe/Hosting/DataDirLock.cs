using Microsoft.Extensions.Options;

namespace MedServe.Hosting;

/// <summary>
/// One server per data dir: two would interleave the audit chain and the registry's serving state.
/// The lock is an open file with no sharing (an advisory flock on Unix), released by the OS when
/// the process ends, however it ends.
/// </summary>
public sealed class DataDirLock : IDisposable
{
    public const string FileName = "medserve.lock";

    private readonly FileStream _file;

    private DataDirLock(FileStream file) => _file = file;

    /// <summary>Why a data dir could not be locked; only <see cref="Held"/> means another server.</summary>
    public enum Problem
    {
        Held,
        PermissionDenied,
        ReadOnly,
        NotAFolder,
        Other,
    }

    /// <param name="dataDir">The resolved (absolute) folder.</param>
    /// <param name="shownAs">The folder as the operator gave it, for messages: they name no path beyond it.</param>
    public static DataDirLock Acquire(string dataDir, string? shownAs = null)
    {
        var path = Path.Combine(dataDir, FileName);
        try
        {
            Directory.CreateDirectory(dataDir);
            return new DataDirLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OptionsValidationException(ServerOptions.Section, typeof(ServerOptions), [Describe(e, shownAs ?? dataDir, Directory.Exists(path))]);
        }
    }

    public static Problem Classify(Exception error) => error switch
    {
        // A folder named medserve.lock is refused as "access denied" (EISDIR); the caller says which it was.
        UnauthorizedAccessException => Problem.PermissionDenied,
        DirectoryNotFoundException => Problem.NotAFolder,
        IOException { HResult: EWouldBlockLinux or EWouldBlockBsd or SharingViolation or LockViolation } => Problem.Held,
        IOException { HResult: ReadOnlyFileSystem } => Problem.ReadOnly,
        IOException { HResult: AlreadyExists or NotADirectory } => Problem.NotAFolder,
        _ => Problem.Other,
    };

    /// <summary>What the operator is told: the problem and the fix, naming the data dir as given, never the OS's message (it holds the absolute path).</summary>
    public static string Describe(Exception error, string shownAs, bool lockIsAFolder = false) => Classify(error) switch
    {
        Problem.Held => $"another MedServe is already using the data dir {shownAs}; give this one its own --data-dir",
        Problem.PermissionDenied when lockIsAFolder => $"the data dir {shownAs} holds a folder named {FileName} where the lock file belongs; remove it",
        Problem.PermissionDenied => $"the data dir {shownAs} is not writable by this user: permission denied creating {FileName} in it; give the folder to this user or choose another --data-dir",
        Problem.ReadOnly => $"the data dir {shownAs} is on a read-only file system; the server writes its keys, audit trail and registry there: give it a writable --data-dir",
        Problem.NotAFolder => $"the data dir {shownAs} cannot be created: a file is in the way (it, or a folder above it, is a file); choose another --data-dir",
        _ => $"the data dir {shownAs} cannot be used: creating or opening {FileName} in it failed ({error.GetType().Name}, error {error.HResult}); check the folder and its file system",
    };

    // HResults of the exceptions .NET raises: the errno on Unix, the Win32 error as an HRESULT on Windows.
    private const int EWouldBlockLinux = 11;
    private const int EWouldBlockBsd = 35;
    private const int AlreadyExists = 17;
    private const int NotADirectory = 20;
    private const int ReadOnlyFileSystem = 30;
    private const int SharingViolation = unchecked((int)0x80070020);
    private const int LockViolation = unchecked((int)0x80070021);

    public void Dispose() => _file.Dispose();
}
