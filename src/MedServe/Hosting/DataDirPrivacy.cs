using System.Runtime.InteropServices;

namespace MedServe.Hosting;

/// <summary>
/// The data dir holds keys, audit evidence and models: only the server's own user may enter it.
/// The folder is 0700 (made so when it already exists) and the process creates every file 0600
/// and folder 0700 (umask 077), so SQLite's files, artifacts and copies are private without each
/// writer remembering to be.
/// </summary>
internal static partial class DataDirPrivacy
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public static void Apply(string dataDir)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(dataDir);
            return;
        }

        Umask(0x3F); // 077
        try
        {
            Directory.CreateDirectory(dataDir, OwnerOnly);
            if (File.GetUnixFileMode(dataDir) != OwnerOnly)
            {
                File.SetUnixFileMode(dataDir, OwnerOnly);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A read-only or foreign data dir: taking its lock says what is wrong, in words.
        }
    }

    [LibraryImport("libc", EntryPoint = "umask")]
    private static partial uint Umask(uint mask);
}
