namespace MedServe.IntegrationTests.Support;

/// <summary>The repository's root folder (where MedServe.slnx is), for tests that read deploy/ files.</summary>
internal static class RepositoryRoot
{
    public static readonly string Path = Find();

    private static string Find()
    {
        var folder = new DirectoryInfo(AppContext.BaseDirectory);
        while (folder is not null && !File.Exists(System.IO.Path.Combine(folder.FullName, "MedServe.slnx")))
        {
            folder = folder.Parent;
        }

        return folder?.FullName ?? throw new InvalidOperationException("the repository root (MedServe.slnx) is not above the tests");
    }
}
