using System.Globalization;

namespace MedServe.Repository;

/// <summary>What the repository folder holds for one model: its config (if any) and version folders.</summary>
public sealed record ModelSource(string Name, string Directory, ModelConfig Config, bool HasConfigFile, IReadOnlyList<long> Versions)
{
    /// <summary>
    /// The version's model file. It must resolve, symlinks followed, inside its version folder: a
    /// link to a secret elsewhere on the server is refused like an absolute file name.
    /// </summary>
    public string ModelPath(long version)
    {
        var folder = Path.Combine(Directory, version.ToString(CultureInfo.InvariantCulture));
        var path = Path.Combine(folder, Config.ModelFilename);
        if (Path.Exists(path) && Files.PathConfinement.ResolveInside(folder, Config.ModelFilename, allowSubfolders: false) is null)
        {
            throw new ModelConfigException($"{Config.ModelFilename} in version folder {version} resolves outside that folder; a model file must stay inside its version folder");
        }

        return path;
    }
}

/// <summary>
/// Reads Triton's repository layout: <c>&lt;repo&gt;/&lt;model&gt;/config.pbtxt</c> (or config.json,
/// or none) and <c>&lt;repo&gt;/&lt;model&gt;/&lt;version&gt;/model.onnx</c>, versions being positive integers.
/// </summary>
public static class RepositoryScanner
{
    public const string PbtxtFile = "config.pbtxt";
    public const string JsonFile = "config.json";

    /// <summary>The model folders in the repository, sorted by name; hidden folders are skipped.</summary>
    public static IReadOnlyList<string> ListModels(string root)
    {
        if (!System.IO.Directory.Exists(root))
        {
            return [];
        }

        return new DirectoryInfo(root).EnumerateDirectories()
            .Where(d => !d.Name.StartsWith('.'))
            .Select(d => d.Name)
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>
    /// Reads a model folder. <paramref name="configOverrideJson"/> (a load request's config) replaces
    /// the config file. Throws <see cref="ModelConfigException"/> for a config that cannot be used.
    /// </summary>
    public static ModelSource ReadModel(string root, string name, string? configOverrideJson = null)
    {
        var directory = Path.Combine(root, name);
        ModelConfig config;
        bool hasConfig;
        if (configOverrideJson is not null)
        {
            config = ModelConfigReader.ParseJson(configOverrideJson, name, "the load request's config");
            hasConfig = true;
        }
        else if (File.Exists(Path.Combine(directory, PbtxtFile)))
        {
            config = ModelConfigReader.ParsePbtxt(File.ReadAllText(Path.Combine(directory, PbtxtFile)), name, $"{name}/{PbtxtFile}");
            hasConfig = true;
        }
        else if (File.Exists(Path.Combine(directory, JsonFile)))
        {
            config = ModelConfigReader.ParseJson(File.ReadAllText(Path.Combine(directory, JsonFile)), name, $"{name}/{JsonFile}");
            hasConfig = true;
        }
        else
        {
            config = new ModelConfig { Name = name };
            hasConfig = false;
        }

        if (config.Name != name)
        {
            throw new ModelConfigException($"the config names the model '{config.Name}' but its folder is '{name}'");
        }

        return new ModelSource(name, directory, config, hasConfig, ListVersions(directory));
    }

    private static List<long> ListVersions(string directory)
    {
        var versions = new List<long>();
        if (!System.IO.Directory.Exists(directory))
        {
            return versions;
        }

        foreach (var folder in new DirectoryInfo(directory).EnumerateDirectories())
        {
            if (long.TryParse(folder.Name, NumberStyles.None, CultureInfo.InvariantCulture, out var version) && version > 0)
            {
                versions.Add(version);
            }
        }

        versions.Sort();
        return versions;
    }
}
