using MedServe.Files;
using MedServe.Lifecycle;
using Onnx;

namespace MedServe.Onnx.Graph;

/// <summary>
/// What an ONNX file says about itself before ONNX Runtime opens it: the files its tensors keep
/// their data in (external data), which must stay inside the model's own folder, and its declared
/// dimensions at full 64-bit width (ONNX Runtime's managed metadata narrows them to int).
/// </summary>
internal sealed class OnnxModelFile
{
    private readonly ModelProto _model;

    private OnnxModelFile(ModelProto model) => _model = model;

    public static OnnxModelFile Read(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            return new OnnxModelFile(ModelProto.Parser.ParseFrom(stream));
        }
        catch (Exception e) when (e is Google.Protobuf.InvalidProtocolBufferException or IOException or UnauthorizedAccessException)
        {
            throw new BackendLoadException($"{Path.GetFileName(path)} is not a readable ONNX model");
        }
    }

    /// <summary>
    /// Refuses a model any of whose tensors keeps its data outside <paramref name="folder"/> (an
    /// absolute location, a <c>..</c>, a symlink out) or in a file that is not there. A model file
    /// is hostile: external data naming a secret would let inference read it back.
    /// </summary>
    public void CheckExternalData(string folder)
    {
        foreach (var tensor in Tensors())
        {
            if (tensor.DataLocation != TensorProto.Types.DataLocation.External)
            {
                continue;
            }

            var location = tensor.ExternalData.FirstOrDefault(e => e.Key == "location")?.Value ?? "";
            if (PathConfinement.ResolveInside(folder, location) is null)
            {
                throw new BackendLoadException(
                    $"tensor '{Shorten(tensor.Name)}' keeps its data in a file outside the model's folder or missing from it; external data must be a relative file inside the model's version folder");
            }
        }
    }

    /// <summary>The declared dimensions of a graph input or output (-1 for symbolic or unknown ones), or null.</summary>
    public long[]? DeclaredDims(string name)
    {
        var value = _model.Graph?.Input.FirstOrDefault(i => i.Name == name) ?? _model.Graph?.Output.FirstOrDefault(o => o.Name == name);
        var dims = value?.Type?.TensorType?.Shape?.Dim;
        return dims?.Select(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && d.DimValue >= 0 ? d.DimValue : -1).ToArray();
    }

    /// <summary>Every tensor the model holds: initializers, sparse ones, attribute constants, in subgraphs, functions and training graphs too.</summary>
    private IEnumerable<TensorProto> Tensors()
    {
        var graphs = new Stack<GraphProto>();
        var nodes = new List<NodeProto>();
        Push(graphs, _model.Graph);
        foreach (var training in _model.TrainingInfo)
        {
            Push(graphs, training.Initialization);
            Push(graphs, training.Algorithm);
        }

        foreach (var function in _model.Functions)
        {
            nodes.AddRange(function.Node);
        }

        while (graphs.Count > 0 || nodes.Count > 0)
        {
            if (graphs.TryPop(out var graph))
            {
                foreach (var tensor in graph.Initializer)
                {
                    yield return tensor;
                }

                foreach (var sparse in graph.SparseInitializer)
                {
                    foreach (var tensor in Sparse(sparse))
                    {
                        yield return tensor;
                    }
                }

                nodes.AddRange(graph.Node);
            }

            var pending = nodes.ToList();
            nodes.Clear();
            foreach (var attribute in pending.SelectMany(n => n.Attribute))
            {
                if (attribute.T is { } t)
                {
                    yield return t;
                }

                foreach (var tensor in attribute.Tensors)
                {
                    yield return tensor;
                }

                foreach (var sparse in attribute.SparseTensors.Append(attribute.SparseTensor).OfType<SparseTensorProto>())
                {
                    foreach (var tensor in Sparse(sparse))
                    {
                        yield return tensor;
                    }
                }

                Push(graphs, attribute.G);
                foreach (var subgraph in attribute.Graphs)
                {
                    Push(graphs, subgraph);
                }
            }
        }

        static IEnumerable<TensorProto> Sparse(SparseTensorProto sparse) => new[] { sparse.Values, sparse.Indices }.OfType<TensorProto>();

        static void Push(Stack<GraphProto> stack, GraphProto? graph)
        {
            if (graph is not null)
            {
                stack.Push(graph);
            }
        }
    }

    private static string Shorten(string name) => name.Length <= 64 ? name : name[..64] + "...";
}
