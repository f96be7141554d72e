using System.Collections;

namespace MedServe.Hosting;

/// <summary>
/// MEDSERVE_* environment variables as configuration under the "MedServe" section:
/// <c>MEDSERVE_HTTP_PORT</c> or <c>MEDSERVE_HTTPPORT</c> sets MedServe:HttpPort, and <c>__</c>
/// nests (<c>MEDSERVE_ONNX__INTRA_OP_THREADS</c> sets MedServe:Onnx:IntraOpThreads).
/// </summary>
public static class EnvironmentConfiguration
{
    public const string Prefix = "MEDSERVE_";

    public static Dictionary<string, string?> Read(IDictionary variables)
    {
        var settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (DictionaryEntry variable in variables)
        {
            var name = (string)variable.Key;
            if (!name.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase) || name.Length == Prefix.Length)
            {
                continue;
            }

            var path = name[Prefix.Length..].Split("__").Select(part => part.Replace("_", "", StringComparison.Ordinal));
            settings[ServerOptions.Section + ":" + string.Join(':', path)] = variable.Value as string;
        }

        return settings;
    }
}
