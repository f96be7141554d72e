using MedServe.Backends;
using MedServe.Repository;
using MedServe.Tensors;

namespace MedServe.Registry.Versioning;

/// <summary>How much a signature change asks of a version number.</summary>
public enum ChangeLevel
{
    /// <summary>Same signature: any later version, a patch is enough.</summary>
    Patch,

    /// <summary>Backward-compatible additions (a new optional input, a new output): a minor version at least.</summary>
    Minor,

    /// <summary>Something a client relies on changed or went away: a major version.</summary>
    Major,
}

/// <summary>The verdict on a new version's signature against the version it follows.</summary>
public sealed record SignatureVerdict(ChangeLevel Level, IReadOnlyList<string> Changes);

/// <summary>
/// Semantic versioning, checked against the model signature. A removed or renamed input or
/// output, a changed datatype, an incompatible shape or a new required input breaks clients:
/// major. A new output or a new optional input, or a shape that only widens (a fixed dimension
/// becoming -1): minor. An unchanged signature: patch.
/// </summary>
public static class SignatureRules
{
    public static SignatureVerdict Compare(ModelSignature previous, ModelSignature next)
    {
        var changes = new List<string>();
        var level = ChangeLevel.Patch;

        void Note(ChangeLevel at, string change)
        {
            changes.Add(change);
            if (at > level)
            {
                level = at;
            }
        }

        foreach (var old in previous.Inputs)
        {
            var now = Find(next.Inputs, old.Name);
            if (now is null)
            {
                Note(ChangeLevel.Major, $"input '{old.Name}' was removed or renamed");
                continue;
            }

            CompareTensor("input", old, now, Note);
            if (old.Optional && !now.Optional)
            {
                Note(ChangeLevel.Major, $"input '{old.Name}' became required");
            }
        }

        foreach (var now in next.Inputs)
        {
            if (Find(previous.Inputs, now.Name) is null)
            {
                Note(now.Optional ? ChangeLevel.Minor : ChangeLevel.Major,
                    now.Optional ? $"optional input '{now.Name}' was added" : $"required input '{now.Name}' was added");
            }
        }

        foreach (var old in previous.Outputs)
        {
            var now = Find(next.Outputs, old.Name);
            if (now is null)
            {
                Note(ChangeLevel.Major, $"output '{old.Name}' was removed or renamed");
                continue;
            }

            CompareTensor("output", old, now, Note);
        }

        foreach (var now in next.Outputs)
        {
            if (Find(previous.Outputs, now.Name) is null)
            {
                Note(ChangeLevel.Minor, $"output '{now.Name}' was added");
            }
        }

        return new SignatureVerdict(level, changes);
    }

    /// <summary>
    /// Checks a proposed version number against the version it follows; returns null when it is
    /// right, else a message saying what changed and which version would be.
    /// </summary>
    public static string? Check(SemanticVersion previousVersion, ModelSignature previous, SemanticVersion proposed, ModelSignature next)
    {
        if (proposed <= previousVersion)
        {
            return $"version {proposed} does not follow {previousVersion}; use {previousVersion.NextPatch()} or later";
        }

        var verdict = Compare(previous, next);
        var required = verdict.Level switch
        {
            ChangeLevel.Major => previousVersion.NextMajor(),
            ChangeLevel.Minor => previousVersion.NextMinor(),
            _ => previousVersion.NextPatch(),
        };
        var enough = verdict.Level switch
        {
            ChangeLevel.Major => proposed.Major > previousVersion.Major,
            ChangeLevel.Minor => proposed.Major > previousVersion.Major || proposed.Minor > previousVersion.Minor,
            _ => true,
        };
        return enough
            ? null
            : $"version {proposed} is too small a step from {previousVersion}: {string.Join("; ", verdict.Changes)}; that needs a {verdict.Level.ToString().ToLowerInvariant()} version, {required}";
    }

    private static void CompareTensor(string kind, TensorConfig old, TensorConfig now, Action<ChangeLevel, string> note)
    {
        if (old.DataType != now.DataType)
        {
            note(ChangeLevel.Major, $"{kind} '{old.Name}' changed datatype from {old.DataType.ToWireName()} to {now.DataType.ToWireName()}");
        }

        if (old.Dims.Length != now.Dims.Length)
        {
            note(ChangeLevel.Major, $"{kind} '{old.Name}' changed rank from {TensorShape.Format(old.Dims)} to {TensorShape.Format(now.Dims)}");
            return;
        }

        var widened = false;
        for (var i = 0; i < old.Dims.Length; i++)
        {
            if (old.Dims[i] == now.Dims[i])
            {
                continue;
            }

            // An input that accepts more (fixed -> -1) serves every old client; an output that may
            // now vary in size, or any other change, can break them.
            if (kind == "input" && old.Dims[i] >= 0 && now.Dims[i] == -1)
            {
                widened = true;
                continue;
            }

            note(ChangeLevel.Major, $"{kind} '{old.Name}' changed shape from {TensorShape.Format(old.Dims)} to {TensorShape.Format(now.Dims)}");
            return;
        }

        if (widened)
        {
            note(ChangeLevel.Minor, $"{kind} '{old.Name}' widened its shape from {TensorShape.Format(old.Dims)} to {TensorShape.Format(now.Dims)}");
        }
    }

    private static TensorConfig? Find(IReadOnlyList<TensorConfig> tensors, string name) =>
        tensors.FirstOrDefault(t => t.Name == name);
}
