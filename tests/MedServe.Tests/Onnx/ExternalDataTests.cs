using MedServe.Lifecycle;
using MedServe.Onnx;
using MedServe.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace MedServe.Tests.Onnx;

/// <summary>A model file is hostile: its external data must stay inside its version folder.</summary>
public sealed class ExternalDataTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "medserve-external-" + Guid.NewGuid().ToString("N"));
    private readonly OnnxBackend _backend = new(Options.Create(new OnnxOptions()), NullLogger<OnnxBackend>.Instance);
    private readonly string _version;
    private readonly string _secret;

    public ExternalDataTests()
    {
        _version = Path.Combine(_root, "repo", "exfil", "1");
        Directory.CreateDirectory(_version);
        _secret = Path.Combine(_root, "admin.key");
        File.WriteAllBytes(_secret, Enumerable.Range(1, 16).Select(i => (byte)i).ToArray());
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    public static TheoryData<string> Escapes => new()
    {
        "../../../admin.key",
        "__ABSOLUTE__",
        "weights/../../../../admin.key",
        "link.bin",
        "missing.bin",
        "",
    };

    [Theory]
    [MemberData(nameof(Escapes))]
    public void External_data_outside_the_version_folder_is_refused_before_onnx_runtime_reads_it(string location)
    {
        File.CreateSymbolicLink(Path.Combine(_version, "link.bin"), _secret);
        var model = Path.Combine(_version, "model.onnx");
        File.WriteAllBytes(model, HostileModels.ExternalWeights(location == "__ABSOLUTE__" ? _secret : location));

        var inspect = Assert.Throws<BackendLoadException>(() => _backend.Inspect(model));
        var create = Assert.Throws<BackendLoadException>(() => _backend.CreateInstance(new MedServe.Repository.ModelConfig { Name = "exfil" }, model, 0));

        foreach (var message in new[] { inspect.Message, create.Message })
        {
            Assert.Contains("outside the model's folder", message);
            Assert.DoesNotContain(_root, message);
        }
    }

    [Fact]
    public void External_data_inside_the_version_folder_loads()
    {
        Directory.CreateDirectory(Path.Combine(_version, "weights"));
        File.WriteAllBytes(Path.Combine(_version, "weights", "w.bin"), new byte[16]);
        var model = Path.Combine(_version, "model.onnx");
        File.WriteAllBytes(model, HostileModels.ExternalWeights("weights/w.bin"));

        var signature = _backend.Inspect(model);

        Assert.Equal([-1L, 4L], signature.Inputs[0].Dims);
    }

    [Fact]
    public void A_file_checked_once_is_checked_again_when_it_changes()
    {
        Directory.CreateDirectory(Path.Combine(_version, "weights"));
        File.WriteAllBytes(Path.Combine(_version, "weights", "w.bin"), new byte[16]);
        var model = Path.Combine(_version, "model.onnx");
        File.WriteAllBytes(model, HostileModels.ExternalWeights("weights/w.bin"));
        _backend.Inspect(model);

        File.WriteAllBytes(model, HostileModels.ExternalWeights("../../../admin.key"));

        var error = Assert.Throws<BackendLoadException>(() => _backend.CreateInstance(new MedServe.Repository.ModelConfig { Name = "exfil" }, model, 0));
        Assert.Contains("outside the model's folder", error.Message);
    }

    [Fact]
    public void A_dimension_of_two_to_the_forty_keeps_its_width_in_the_signature()
    {
        var model = Path.Combine(_version, "model.onnx");
        File.WriteAllBytes(model, HostileModels.WideDimension(1L << 40));

        var signature = _backend.Inspect(model);

        Assert.Equal([-1L, 1L << 40], signature.Inputs[0].Dims);
        Assert.Equal([-1L, 1L << 40], signature.Outputs[0].Dims);
    }
}
