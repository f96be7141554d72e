using System.Security.Cryptography;

namespace MedServe.Hosting;

/// <summary>
/// This replica's stable name among those sharing a PostgreSQL: kept in &lt;DataDir&gt;/replica.id,
/// created on first start (host name and a random suffix), so a restarted replica projects its
/// journal under the same number and a new one never takes another's.
/// </summary>
public static class ReplicaIdentity
{
    public static string Of(string dataDir)
    {
        var path = Path.Combine(dataDir, "replica.id");
        if (File.Exists(path) && File.ReadAllText(path).Trim() is { Length: > 0 } existing)
        {
            return existing;
        }

        var host = new string(Environment.MachineName.Where(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.').Take(48).ToArray());
        var name = $"{(host.Length > 0 ? host : "replica")}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4))}";
        Directory.CreateDirectory(dataDir);
        File.WriteAllText(path, name + "\n");
        return name;
    }
}
