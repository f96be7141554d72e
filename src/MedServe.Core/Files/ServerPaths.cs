namespace MedServe.Files;

/// <summary>Takes server paths out of a message (a library's error, say) before it reaches a caller.</summary>
public static partial class ServerPaths
{
    /// <summary>Every absolute path becomes its last segment: "/srv/data/models/x/1/model.onnx" becomes "model.onnx".</summary>
    public static string Scrub(string message) => AbsolutePath().Replace(message, m => m.Groups["name"].Value);

    [System.Text.RegularExpressions.GeneratedRegex(@"(?<![\w.~:/-])(?:/[^\s/'""`:,;()\[\]]+)+/(?<name>[^\s/'""`:,;()\[\]]*)|(?<![\w.~:/-])/(?<name>[^\s/'""`:,;()\[\]]+)")]
    private static partial System.Text.RegularExpressions.Regex AbsolutePath();
}
