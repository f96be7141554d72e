using Microsoft.Extensions.Options;

namespace MedServe.Hosting;

/// <summary>
/// One server per data dir: two would interleave the audit chain and the registry's serving state.
/// The lock is an open file with no sharing (an advisory flock on Unix), released by the OS when
/// the process ends, however it ends.
/// </summary>
public sealed class DataDirLock : IDisposable
{
    private readonly FileStream _file;

    private DataDirLock(FileStream file) => _file = file;

    public static DataDirLock Acquire(string dataDir)
    {
        Directory.CreateDirectory(dataDir);
        var path = Path.Combine(dataDir, "medserve.lock");
        try
        {
            return new DataDirLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
        }
        catch (IOException)
        {
            throw new OptionsValidationException(ServerOptions.Section, typeof(ServerOptions),
                [$"another MedServe is already using the data dir {dataDir}; give this one its own --data-dir"]);
        }
    }

    public void Dispose() => _file.Dispose();
}
