using Google.Protobuf;
using MedServe.Backends;
using MedServe.Inference;
using MedServe.Lifecycle;
using MedServe.Onnx;
using MedServe.Registry;
using MedServe.Registry.Artifacts;
using MedServe.Registry.Serving;
using MedServe.Registry.Store;
using MedServe.Statistics;
using MedServe.Tensors;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace MedServe.Tests.Registry;

/// <summary>Registry intent reconciled into serving, on real ONNX Runtime sessions, under concurrent load.</summary>
public sealed class HotSwapTests(Xunit.Abstractions.ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly string Risk = Path.Combine(AppContext.BaseDirectory, "samples", "risk.onnx");
    private readonly string _root = Path.Combine(Path.GetTempPath(), "medserve-hotswap-" + Guid.NewGuid().ToString("N"));
    private ModelManager _models = null!;
    private ModelRegistry _registry = null!;
    private ServingReconciler _reconciler = null!;
    private CountingBackend _backend = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Path.Combine(_root, "models"));
        var store = await RegistryStore.OpenAsync(Path.Combine(_root, "registry.db"), TimeProvider.System);
        var artifacts = new ArtifactStore(Path.Combine(_root, "artifacts"));
        var backend = new OnnxBackend(Options.Create(new OnnxOptions()), NullLogger<OnnxBackend>.Instance);
        _backend = new CountingBackend(backend);
        _models = new ModelManager(
            Options.Create(new ModelRepositoryOptions { Path = Path.Combine(_root, "models") }), Options.Create(new MetricsOptions()),
            [_backend], NullLogger<ModelManager>.Instance, TimeProvider.System);
        _registry = new ModelRegistry(store, artifacts, backend);
        _reconciler = new ServingReconciler(store, artifacts, _models);
        await store.CreateModelAsync("risk", "");
        await Register("1.0.0", Risk);
        await Register("1.0.1", Risk);
    }

    public async Task DisposeAsync()
    {
        _reconciler.Dispose();
        await _models.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task Switching_the_alias_20_times_under_load_fails_no_request()
    {
        await SetChampion(1);
        var allowed = new List<HashSet<long>> { new() { 1 } };
        var epoch = 0;
        var failures = new List<string>();
        var served = 0;
        using var stop = new CancellationTokenSource();

        var load = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var from = Volatile.Read(ref epoch);
                try
                {
                    using var request = Request();
                    using var result = await _models.InferAsync("risk", null, request, CancellationToken.None);
                    var to = Volatile.Read(ref epoch);
                    lock (allowed)
                    {
                        // The version that answered was current at some point while the request ran.
                        if (!Enumerable.Range(from, to - from + 1).Any(e => allowed[e].Contains(result.ModelVersion)))
                        {
                            failures.Add($"version {result.ModelVersion} answered between epochs {from} and {to}");
                        }
                    }

                    Interlocked.Increment(ref served);
                }
                catch (InferenceException e)
                {
                    lock (allowed)
                    {
                        failures.Add(e.Message);
                    }
                }
            }
        })).ToArray();

        for (var i = 0; i < 20; i++)
        {
            long next = i % 2 == 0 ? 2 : 1;
            lock (allowed)
            {
                allowed.Add([1, 2]); // during the swap either may answer
                epoch++;
            }

            var status = await SetChampion(next);
            Assert.True(status.Converged, status.Reason);
            lock (allowed)
            {
                allowed.Add([next]);
                epoch++;
            }
        }

        await stop.CancelAsync();
        await Task.WhenAll(load);

        output.WriteLine($"{served} requests during 20 swaps, {failures.Count} failed");
        Assert.Empty(failures);
        Assert.True(served > 100, $"only {served} requests ran during the swaps");
        Assert.Equal(1, _models.ServingVersion("risk"));
        Assert.Equal([1L], _models.ReadyVersions("risk").Select(v => v.Version));
    }

    [Fact]
    public async Task A_promotion_creates_one_session_set_and_the_warmed_version_is_the_one_that_answers()
    {
        await SetChampion(1);
        var v1 = _models.Find("risk", "1");
        var beforePromotion = _backend.Instances;

        var status = await SetChampion(2);

        Assert.True(status.Converged, status.Reason);
        var instances = _models.Find("risk", "2").Config.InstanceCount;
        Assert.Equal(instances, _backend.Instances - beforePromotion);

        // The v2 that serves is the one that was warmed up: its statistics hold the warm-up, and it is the object now routed to.
        var v2 = _models.Find("risk", null);
        Assert.Equal(2, v2.Version);
        Assert.True(v2.Statistics.Success.Count >= 1, "the serving version never saw its warm-up");
        using (var request = Request())
        {
            using var result = await _models.InferAsync("risk", null, request, CancellationToken.None);
        }

        Assert.Same(v2, _models.Find("risk", "2"));
        Assert.NotSame(v1, v2);

        // A second alias on the serving version rewrites the version policy, and reloads nothing.
        var afterPromotion = _backend.Instances;
        var served = v2.Statistics.Success.Count;
        await _registry.Store.SetAliasAsync("risk", "staging", 2, "tester", "test");
        Assert.True((await _reconciler.ReconcileAsync("risk")).Converged);
        Assert.Equal(afterPromotion, _backend.Instances);
        Assert.Same(v2, _models.Find("risk", "2"));
        Assert.Equal(served, v2.Statistics.Success.Count);
    }

    [Fact]
    public async Task A_pinned_version_that_cannot_answer_is_refused_naming_it_not_replaced_by_another()
    {
        await SetChampion(1);
        await _registry.Store.SetAliasAsync("risk", "staging", 2, "tester", "test");
        Assert.True((await _reconciler.ReconcileAsync("risk")).Converged);
        Assert.Equal(1, _models.ServingVersion("risk"));

        // Version 1 stops answering while it is still pinned (it drains): version 2 is ready, and must not get its traffic.
        await _models.Find("risk", "1").RetireAsync("test", TimeSpan.Zero);
        using var request = Request();
        var refused = await Assert.ThrowsAsync<InferenceException>(async () => await _models.InferAsync("risk", null, request, CancellationToken.None));
        Assert.Equal(InferenceErrorKind.Unavailable, refused.Kind);
        Assert.Contains("version 1", refused.Message);
    }

    [Fact]
    public async Task A_version_that_fails_warm_up_leaves_the_previous_one_serving_and_says_why()
    {
        await SetChampion(1);
        var broken = Path.Combine(_root, "broken.onnx");
        WriteReshapeToSeven(broken);
        await Register("2.0.0", broken);

        var status = await SetChampion(3);

        Assert.False(status.Converged);
        Assert.Equal(3, status.Intended);
        Assert.Equal(1, status.Serving);
        Assert.Contains("version 3 not served", status.Reason);
        Assert.Contains("warm-up", status.Reason);
        Assert.Equal(1, _models.ServingVersion("risk"));
        using var request = Request();
        using var result = await _models.InferAsync("risk", null, request, CancellationToken.None);
        Assert.Equal(1, result.ModelVersion);
    }

    [Fact]
    public async Task A_first_version_that_fails_warm_up_serves_nothing_and_is_not_reported_converged()
    {
        var broken = Path.Combine(_root, "broken.onnx");
        WriteReshapeToSeven(broken);
        await Register("2.0.0", broken);

        var status = await SetChampion(3);

        Assert.False(status.Converged);
        Assert.Equal(3, status.Intended);
        Assert.Null(status.Serving);
        Assert.Contains("version 3 not served", status.Reason);
        Assert.Null(_models.ServingVersion("risk"));
        using var request = Request();
        await Assert.ThrowsAsync<InferenceException>(async () => await _models.InferAsync("risk", null, request, CancellationToken.None));
    }

    [Fact]
    public async Task Rollback_points_the_alias_back_and_records_why()
    {
        await SetChampion(1);
        await SetChampion(2);

        var status = await _reconciler.RollbackAsync("risk", "oncall", "AUROC dropped");

        Assert.True(status.Converged);
        Assert.Equal(1, _models.ServingVersion("risk"));
        var last = (await _registry.Store.GetAliasHistoryAsync("risk"))[^1];
        Assert.Equal((2L, 1L, "oncall", "rollback: AUROC dropped"), (last.From!.Value, last.To!.Value, last.ChangedBy, last.Reason));
    }

    private async Task<ServingStatus> SetChampion(long version)
    {
        await _registry.Store.SetAliasAsync("risk", "champion", version, "tester", "test");
        return await _reconciler.ReconcileAsync("risk");
    }

    private async Task Register(string version, string file)
    {
        await using var stream = File.OpenRead(file);
        await _registry.RegisterAsync(new VersionRegistration("risk", version, "file://" + file, "tester"), stream);
    }

    private static InferenceRequest Request()
    {
        var request = new InferenceRequest();
        request.Inputs.Add(new InputTensor("input", TensorDataType.Fp32, [1, 30], new byte[120]));
        return request;
    }

    /// <summary>A valid graph that cannot run: [N,30] reshaped to [7] fails at inference time.</summary>
    private static void WriteReshapeToSeven(string path)
    {
        var graph = new global::Onnx.GraphProto { Name = "broken" };
        var shape = new global::Onnx.TensorProto { Name = "shape", DataType = (int)global::Onnx.TensorProto.Types.DataType.Int64 };
        shape.Dims.Add(1);
        shape.Int64Data.Add(7);
        graph.Initializer.Add(shape);
        graph.Input.Add(Value("input", -1, 30));
        graph.Output.Add(Value("output", 7));
        var node = new global::Onnx.NodeProto { OpType = "Reshape", Name = "reshape" };
        node.Input.Add("input");
        node.Input.Add("shape");
        node.Output.Add("output");
        graph.Node.Add(node);
        var model = new global::Onnx.ModelProto { IrVersion = 8, Graph = graph };
        model.OpsetImport.Add(new global::Onnx.OperatorSetIdProto { Domain = "", Version = 13 });
        File.WriteAllBytes(path, model.ToByteArray());
    }

    private static global::Onnx.ValueInfoProto Value(string name, params long[] dims)
    {
        var shape = new global::Onnx.TensorShapeProto();
        foreach (var dim in dims)
        {
            shape.Dim.Add(dim < 0 ? new global::Onnx.TensorShapeProto.Types.Dimension { DimParam = "n" } : new global::Onnx.TensorShapeProto.Types.Dimension { DimValue = dim });
        }

        return new global::Onnx.ValueInfoProto
        {
            Name = name,
            Type = new global::Onnx.TypeProto { TensorType = new global::Onnx.TypeProto.Types.Tensor { ElemType = (int)global::Onnx.TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    /// <summary>The real ONNX backend, counting the sessions it creates.</summary>
    private sealed class CountingBackend(IModelBackend inner) : IModelBackend
    {
        private int _instances;

        public int Instances => Volatile.Read(ref _instances);

        public string Platform => inner.Platform;

        public bool Handles(MedServe.Repository.ModelConfig config) => inner.Handles(config);

        public ModelSignature Inspect(string modelPath) => inner.Inspect(modelPath);

        public IModelInstance CreateInstance(MedServe.Repository.ModelConfig config, string modelPath, int instanceIndex)
        {
            Interlocked.Increment(ref _instances);
            return inner.CreateInstance(config, modelPath, instanceIndex);
        }
    }
}
