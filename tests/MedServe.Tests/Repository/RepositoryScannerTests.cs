using MedServe.Repository;

namespace MedServe.Tests.Repository;

public sealed class RepositoryScannerTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "medserve-tests-" + Guid.NewGuid().ToString("N"));

    public RepositoryScannerTests() => Directory.CreateDirectory(_root);

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private string Folder(params string[] parts)
    {
        var path = Path.Combine([_root, .. parts]);
        Directory.CreateDirectory(path);
        return path;
    }

    private void File(string content, params string[] parts)
    {
        var path = Path.Combine([_root, .. parts]);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        System.IO.File.WriteAllText(path, content);
    }

    [Fact]
    public void ModelPath_ALinkOutOfTheVersionFolder_IsRefused()
    {
        File("secret", "admin.key");
        Folder("m", "1");
        Folder("m", "2");
        System.IO.File.CreateSymbolicLink(Path.Combine(_root, "m", "1", "model.onnx"), Path.Combine(_root, "admin.key"));
        File("model", "m", "2", "model.onnx");

        var source = RepositoryScanner.ReadModel(_root, "m");

        var error = Assert.Throws<ModelConfigException>(() => source.ModelPath(1));
        Assert.DoesNotContain(_root, error.Message);
        Assert.Equal(Path.Combine(_root, "m", "2", "model.onnx"), source.ModelPath(2));
    }

    [Fact]
    public void ListModels_SkipsHiddenFoldersAndFiles_SortedOrdinally()
    {
        Folder("resnet");
        Folder("Bert");
        Folder("densenet");
        Folder(".git");
        Folder(".cache", "hidden_model");
        File("not a model", "README.md");

        Assert.Equal(["Bert", "densenet", "resnet"], RepositoryScanner.ListModels(_root));
    }

    [Fact]
    public void ListModels_MissingRoot_IsEmpty()
    {
        Assert.Empty(RepositoryScanner.ListModels(Path.Combine(_root, "nowhere")));
    }

    [Fact]
    public void ReadModel_FindsNumericVersionFoldersOnly_SortedNumerically()
    {
        foreach (var version in new[] { "10", "2", "1", "abc", "0", "-3", "+4", "1.5", "v7" })
        {
            Folder("m", version);
        }

        File("", "m", "3"); // a file, not a folder

        var source = RepositoryScanner.ReadModel(_root, "m");

        Assert.Equal([1L, 2L, 10L], source.Versions);
    }

    [Fact]
    public void ReadModel_NoConfig_GivesTheDefaultConfigNamedAfterTheFolder()
    {
        Folder("wdbc", "1");

        var source = RepositoryScanner.ReadModel(_root, "wdbc");

        Assert.Equal("wdbc", source.Name);
        Assert.False(source.HasConfigFile);
        Assert.Equal("wdbc", source.Config.Name);
        Assert.Equal(0, source.Config.MaxBatchSize);
        Assert.Empty(source.Config.Inputs);
        Assert.Equal(Path.Combine(_root, "wdbc"), source.Directory);
        Assert.Equal(Path.Combine(_root, "wdbc", "1", "model.onnx"), source.ModelPath(1));
    }

    [Fact]
    public void ReadModel_MissingFolder_HasNoVersions()
    {
        var source = RepositoryScanner.ReadModel(_root, "ghost");

        Assert.Empty(source.Versions);
        Assert.False(source.HasConfigFile);
    }

    [Fact]
    public void ReadModel_PrefersConfigPbtxtOverConfigJson()
    {
        File("name: \"m\"\nmax_batch_size: 4", "m", RepositoryScanner.PbtxtFile);
        File("""{"name":"m","max_batch_size":2}""", "m", RepositoryScanner.JsonFile);

        var source = RepositoryScanner.ReadModel(_root, "m");

        Assert.True(source.HasConfigFile);
        Assert.Equal(4, source.Config.MaxBatchSize);
    }

    [Fact]
    public void ReadModel_ReadsConfigJsonWhenThereIsNoPbtxt()
    {
        File("""{"name":"m","max_batch_size":2,"default_model_filename":"net.onnx"}""", "m", RepositoryScanner.JsonFile);

        var source = RepositoryScanner.ReadModel(_root, "m");

        Assert.True(source.HasConfigFile);
        Assert.Equal(2, source.Config.MaxBatchSize);
        Assert.Equal(Path.Combine(_root, "m", "7", "net.onnx"), source.ModelPath(7));
    }

    [Fact]
    public void ReadModel_ConfigWithoutName_TakesTheFolderName()
    {
        File("max_batch_size: 1", "m", RepositoryScanner.PbtxtFile);

        Assert.Equal("m", RepositoryScanner.ReadModel(_root, "m").Config.Name);
    }

    [Theory]
    [InlineData(RepositoryScanner.PbtxtFile, "name: \"other\"")]
    [InlineData(RepositoryScanner.JsonFile, "{\"name\":\"other\"}")]
    public void ReadModel_ConfigNamingAnotherModel_IsAModelConfigException(string file, string content)
    {
        File(content, "m", file);

        var error = Assert.Throws<ModelConfigException>(() => RepositoryScanner.ReadModel(_root, "m"));

        Assert.Contains("'other'", error.Message);
        Assert.Contains("'m'", error.Message);
    }

    [Fact]
    public void ReadModel_InvalidConfig_NamesTheFile()
    {
        File("name: \"m\"\nbogus: 1", "m", RepositoryScanner.PbtxtFile);

        var error = Assert.Throws<ModelConfigException>(() => RepositoryScanner.ReadModel(_root, "m"));

        Assert.Contains("m/config.pbtxt", error.Message);
        Assert.Contains("'bogus'", error.Message);
    }

    [Fact]
    public void ReadModel_OverrideJson_ReplacesTheConfigFile()
    {
        File("name: \"m\"\nmax_batch_size: 4", "m", RepositoryScanner.PbtxtFile);

        var source = RepositoryScanner.ReadModel(_root, "m", """{"max_batch_size":16}""");

        Assert.True(source.HasConfigFile);
        Assert.Equal("m", source.Config.Name);
        Assert.Equal(16, source.Config.MaxBatchSize);
    }

    [Fact]
    public void ReadModel_OverrideNamingAnotherModel_IsAModelConfigException()
    {
        Folder("m");

        Assert.Throws<ModelConfigException>(() => RepositoryScanner.ReadModel(_root, "m", """{"name":"x"}"""));
    }
}
