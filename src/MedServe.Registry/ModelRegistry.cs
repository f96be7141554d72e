using System.Text.Json;
using MedServe.Backends;
using MedServe.Registry.Artifacts;
using MedServe.Registry.Store;
using MedServe.Registry.Versioning;
using MedServe.Repository;
using MedServe.Tensors;

namespace MedServe.Registry;

/// <summary>What a registration carries besides the ONNX file.</summary>
public sealed record VersionRegistration(
    string Model,
    string SemanticVersion,
    string Source,
    string RegisteredBy,
    string ModelCardJson = "{}",
    string LineageJson = "{}",
    string MetricsJson = "{}");

/// <summary>
/// Registers model versions: stores the artifact by content, reads its signature with the
/// backend, and checks the semantic version against the version it follows before recording it.
/// </summary>
public sealed class ModelRegistry(IRegistryStore store, ArtifactStore artifacts, IModelBackend backend)
{
    public IRegistryStore Store { get; } = store;

    /// <summary>The largest model file a registration may bring (MedServe:Registry:MaxArtifactBytes).</summary>
    public long MaxArtifactBytes { get; init; } = 4L << 30;

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, SemaphoreSlim> _gates = new(StringComparer.Ordinal);

    /// <param name="registration">An empty SemanticVersion picks the smallest step the signature change allows (1.0.0 first).</param>
    public async Task<ModelVersionRecord> RegisterAsync(VersionRegistration registration, Stream onnx, CancellationToken cancellationToken = default)
    {
        var automatic = registration.SemanticVersion.Length == 0;
        SemanticVersion proposed = default;
        if (!automatic && !SemanticVersion.TryParse(registration.SemanticVersion, out proposed))
        {
            throw new RegistryException(RegistryError.Invalid, $"'{registration.SemanticVersion}' is not a semantic version MAJOR.MINOR.PATCH, such as 1.4.0");
        }

        if (await Store.GetModelAsync(registration.Model, cancellationToken).ConfigureAwait(false) is null)
        {
            throw new RegistryException(RegistryError.NotFound, $"registered model '{registration.Model}' does not exist; create it first");
        }

        // The bytes are inspected alone in a staging folder and enter the store only if the version is recorded.
        using var staged = await artifacts.StageAsync(onnx, MaxArtifactBytes, cancellationToken).ConfigureAwait(false);
        var digest = staged.Digest;
        ModelSignature signature;
        try
        {
            signature = backend.Inspect(staged.Path);
        }
        catch (Lifecycle.BackendLoadException e)
        {
            throw new RegistryException(RegistryError.Invalid, $"the artifact is not a model MedServe can serve: {e.Message}");
        }

        // Into the store (and the object store) before the version is recorded: once another replica can
        // read the version, its blob is there to fetch. A failed upload records nothing.
        await staged.CommitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // The check and the insert meet in the store's transaction: if another servable version
            // lands in between, the insert is refused and the check runs again against it.
            // In this process registrations of one model take turns; across processes (a shared store) a lost race retries:
            // each loss means another registration won, so this ends.
            var gate = _gates.GetOrAdd(registration.Model, _ => new SemaphoreSlim(1, 1));
            await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                for (var attempt = 1; ; attempt++)
                {
                    var version = await CheckAsync(registration, signature, automatic, proposed, digest, cancellationToken).ConfigureAwait(false);
                    try
                    {
                        return await Store.AddVersionAsync(version, cancellationToken).ConfigureAwait(false);
                    }
                    catch (RegistryConcurrencyException) when (attempt < 100)
                    {
                    }
                }
            }
            finally
            {
                gate.Release();
            }
        }
        catch
        {
            staged.Revert();
            throw;
        }
    }

    /// <summary>The version to record: its semantic version checked against (or stepped from) the highest one registered so far.</summary>
    private async Task<NewModelVersion> CheckAsync(VersionRegistration registration, ModelSignature signature, bool automatic, SemanticVersion proposed, string digest, CancellationToken cancellationToken)
    {
        var servable = (await Store.ListVersionsAsync(registration.Model, cancellationToken).ConfigureAwait(false)).Where(v => v.Servable).ToList();
        var previous = servable
            .Select(v => (Record: v, Version: SemanticVersion.Parse(v.SemanticVersion)))
            .OrderByDescending(v => v.Version)
            .FirstOrDefault();
        if (automatic)
        {
            proposed = previous.Record is null
                ? new SemanticVersion(1, 0, 0)
                : SignatureRules.Compare(ReadSignature(previous.Record.SignatureJson), signature).Level switch
                {
                    ChangeLevel.Major => previous.Version.NextMajor(),
                    ChangeLevel.Minor => previous.Version.NextMinor(),
                    _ => previous.Version.NextPatch(),
                };
        }
        else if (previous.Record is not null)
        {
            var problem = SignatureRules.Check(previous.Version, ReadSignature(previous.Record.SignatureJson), proposed, signature);
            if (problem is not null)
            {
                throw new RegistryException(RegistryError.Invalid, $"model '{registration.Model}': {problem}");
            }
        }

        return new NewModelVersion(
            registration.Model, proposed.ToString(), digest, registration.Source, WriteSignature(signature),
            registration.ModelCardJson, WithParent(registration.LineageJson, previous.Record), registration.MetricsJson, registration.RegisteredBy)
        {
            CheckedAgainst = servable.Count == 0 ? 0 : servable.Max(v => v.Version),
        };
    }

    /// <summary>
    /// Records a version whose source MedServe cannot read (as MLflow accepts any source URI): it is
    /// registered, never served, and says why. It takes no semantic version.
    /// </summary>
    public async Task<ModelVersionRecord> RecordUnservableAsync(VersionRegistration registration, string reason, CancellationToken cancellationToken = default) =>
        await Store.AddVersionAsync(new NewModelVersion(
            registration.Model, "", "", registration.Source, "{\"inputs\":[],\"outputs\":[]}",
            registration.ModelCardJson, registration.LineageJson, registration.MetricsJson, registration.RegisteredBy)
        { UnservableReason = reason }, cancellationToken).ConfigureAwait(false);

    /// <summary>Lineage names the version this one follows (parent_version, its integer version) unless the caller did.</summary>
    private static string WithParent(string lineageJson, ModelVersionRecord? parent)
    {
        var lineage = System.Text.Json.Nodes.JsonNode.Parse(lineageJson) as System.Text.Json.Nodes.JsonObject
            ?? throw new RegistryException(RegistryError.Invalid, "lineage must be a JSON object");
        if (parent is not null && !lineage.ContainsKey("parent_version"))
        {
            lineage["parent_version"] = parent.Version;
            lineage["parent_semantic_version"] = parent.SemanticVersion;
        }

        return lineage.ToJsonString();
    }

    public static string WriteSignature(ModelSignature signature) => JsonSerializer.Serialize(new
    {
        inputs = signature.Inputs.Select(Tensor),
        outputs = signature.Outputs.Select(Tensor),
    });

    public static ModelSignature ReadSignature(string json)
    {
        using var document = JsonDocument.Parse(json);
        return new ModelSignature(Tensors(document.RootElement.GetProperty("inputs")), Tensors(document.RootElement.GetProperty("outputs")));

        static List<TensorConfig> Tensors(JsonElement list) => list.EnumerateArray().Select(t =>
        {
            TensorDataTypes.TryParseWireName(t.GetProperty("datatype").GetString(), out var type);
            return new TensorConfig(t.GetProperty("name").GetString()!, type, t.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray())
            {
                Optional = t.TryGetProperty("optional", out var optional) && optional.GetBoolean(),
            };
        }).ToList();
    }

    private static object Tensor(TensorConfig t) => new { name = t.Name, datatype = t.DataType.ToWireName(), shape = t.Dims, optional = t.Optional };
}
