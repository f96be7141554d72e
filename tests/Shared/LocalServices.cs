using System.Net;
using System.Net.Sockets;

namespace MedServe.Tests.Support;

/// <summary>What the fixtures that start real servers (PostgreSQL, Redis, Azurite) share: a free loopback port, and a program found on PATH.</summary>
public static class LocalServices
{
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>The program's path on PATH or in one of <paramref name="also"/>; null when it is not installed.</summary>
    public static string? Find(string program, params string[] also) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(also)
            .Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);
}

/// <summary>
/// A test that needs a local server (skipped with <paramref name="skipReason"/> where it cannot
/// run) and, when it says so, PostgreSQL as well.
/// </summary>
public abstract class LocalServiceFactAttribute(string? skipReason) : Xunit.FactAttribute
{
    private readonly bool _withPostgres;

    /// <summary>The test needs PostgreSQL as well.</summary>
    public bool WithPostgres
    {
        get => _withPostgres;
        init
        {
            _withPostgres = value;
            Skip = skipReason ?? (value ? TestPostgres.SkipReason : null);
        }
    }

    protected void SkipUnlessAvailable() => Skip = skipReason;
}
