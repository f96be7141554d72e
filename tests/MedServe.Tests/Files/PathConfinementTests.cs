using MedServe.Files;

namespace MedServe.Tests.Files;

public sealed class PathConfinementTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "medserve-confine-" + Guid.NewGuid().ToString("N"));

    public PathConfinementTests()
    {
        Directory.CreateDirectory(Path.Combine(_root, "model", "1", "weights"));
        File.WriteAllText(Path.Combine(_root, "model", "1", "model.onnx"), "m");
        File.WriteAllText(Path.Combine(_root, "model", "1", "weights", "w.bin"), "w");
        File.WriteAllText(Path.Combine(_root, "secret.key"), "s");
        File.CreateSymbolicLink(Path.Combine(_root, "model", "1", "link-out"), Path.Combine(_root, "secret.key"));
        File.CreateSymbolicLink(Path.Combine(_root, "model", "1", "link-in"), Path.Combine(_root, "model", "1", "model.onnx"));
        Directory.CreateSymbolicLink(Path.Combine(_root, "model", "1", "dir-out"), _root);
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Theory]
    [InlineData("model.onnx", false, true)]
    [InlineData("weights/w.bin", true, true)]
    [InlineData("weights/w.bin", false, false)]
    [InlineData("/etc/passwd", true, false)]
    [InlineData("../secret.key", true, false)]
    [InlineData("weights/../../secret.key", true, false)]
    [InlineData("..", true, false)]
    [InlineData(".", true, false)]
    [InlineData("", true, false)]
    [InlineData("a//b", true, false)]
    [InlineData("a\\b", true, false)]
    [InlineData("model.onnx\0.txt", true, false)]
    [InlineData("line\nbreak", true, false)]
    public void Plain_relative_names_follow_the_grammar(string name, bool subfolders, bool plain) =>
        Assert.Equal(plain, PathConfinement.IsPlainRelative(name, subfolders));

    [Fact]
    public void A_name_resolves_inside_its_folder_only_when_no_symlink_or_dots_lead_out()
    {
        var folder = Path.Combine(_root, "model", "1");
        Assert.Equal(Path.Combine(PathConfinement.RealPath(folder)!, "model.onnx"), PathConfinement.ResolveInside(folder, "model.onnx"));
        Assert.NotNull(PathConfinement.ResolveInside(folder, "weights/w.bin"));
        Assert.NotNull(PathConfinement.ResolveInside(folder, "link-in"));
        Assert.Null(PathConfinement.ResolveInside(folder, "link-out"));
        Assert.Null(PathConfinement.ResolveInside(folder, "dir-out/secret.key"));
        Assert.Null(PathConfinement.ResolveInside(folder, "../../secret.key"));
        Assert.Null(PathConfinement.ResolveInside(folder, Path.Combine(_root, "secret.key")));
        Assert.Null(PathConfinement.ResolveInside(folder, "missing.bin"));
    }

    [Fact]
    public void Real_paths_resolve_symlinks_in_every_component()
    {
        Assert.Equal(PathConfinement.RealPath(Path.Combine(_root, "secret.key")), PathConfinement.RealPath(Path.Combine(_root, "model", "1", "dir-out", "model", "1", "link-out")));
        Assert.Null(PathConfinement.RealPath(Path.Combine(_root, "nothing")));
        Assert.True(PathConfinement.IsInside("/a/b", "/a/b/c"));
        Assert.False(PathConfinement.IsInside("/a/b", "/a/bc"));
    }

    [Theory]
    [InlineData("Load model from /srv/medserve/artifacts/staging/0a1b/model.onnx failed: bad", "Load model from model.onnx failed: bad")]
    [InlineData("open '/root/.medserve/admin.key': denied", "open 'admin.key': denied")]
    [InlineData("see https://onnx.ai/docs/x for help", "see https://onnx.ai/docs/x for help")]
    [InlineData("ratio 3/4 kept", "ratio 3/4 kept")]
    public void Server_paths_are_scrubbed_from_messages(string message, string scrubbed) =>
        Assert.Equal(scrubbed, ServerPaths.Scrub(message));
}
