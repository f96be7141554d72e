using Google.Protobuf;
using Onnx;

namespace MedServe.Onnx.Graph;

/// <summary>
/// Small, checked edits of an ONNX graph (through OnnxSharp's protobuf types) that make an
/// exported model fit to serve: clean tensor names, a dynamic batch dimension, a flat output.
/// </summary>
public sealed class OnnxGraphEditor
{
    private readonly GraphProto _graph;

    private OnnxGraphEditor(GraphProto graph) => _graph = graph;

    /// <summary>Reads <paramref name="source"/>, applies <paramref name="edit"/>, writes <paramref name="destination"/>.</summary>
    public static void Edit(string source, string destination, Action<OnnxGraphEditor> edit)
    {
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(source));
        edit(new OnnxGraphEditor(model.Graph));
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(destination))!);
        var temporary = destination + ".tmp";
        using (var stream = File.Create(temporary))
        {
            model.WriteTo(stream);
        }

        File.Move(temporary, destination, overwrite: true);
    }

    public IEnumerable<string> InputNames => _graph.Input.Select(i => i.Name).Where(n => _graph.Initializer.All(t => t.Name != n));

    public IEnumerable<string> OutputNames => _graph.Output.Select(o => o.Name);

    /// <summary>Drops every graph output but the named ones.</summary>
    public void KeepOutputs(IReadOnlyCollection<string> names)
    {
        foreach (var name in names)
        {
            Require(_graph.Output, name, "output");
        }

        var keep = _graph.Output.Where(o => names.Contains(o.Name)).ToList();
        _graph.Output.Clear();
        _graph.Output.AddRange(keep);
    }

    public void RenameInput(string from, string to) => Rename(Require(_graph.Input, from, "input"), from, to);

    public void RenameOutput(string from, string to) => Rename(Require(_graph.Output, from, "output"), from, to);

    /// <summary>
    /// Makes the first dimension of every graph input and output symbolic, and drops the inferred
    /// intermediate shapes (they carry the old fixed batch size; ONNX Runtime infers them again).
    /// </summary>
    public void MakeBatchDynamic(string dimName)
    {
        foreach (var value in _graph.Input.Where(i => _graph.Initializer.All(t => t.Name != i.Name)).Concat(_graph.Output))
        {
            var dims = value.Type?.TensorType?.Shape?.Dim;
            if (dims is null || dims.Count == 0)
            {
                throw new InvalidOperationException($"tensor '{value.Name}' has no shape to make dynamic");
            }

            dims[0] = new TensorShapeProto.Types.Dimension { DimParam = dimName };
        }

        _graph.ValueInfo.Clear();
    }

    /// <summary>Appends a Flatten (axis 1) after an output: [N, C, 1, 1] becomes [N, C*1*1], named <paramref name="newName"/>.</summary>
    public void FlattenOutput(string output, string newName)
    {
        var value = Require(_graph.Output, output, "output");
        var dims = value.Type.TensorType.Shape.Dim;
        long inner = 1;
        foreach (var dim in dims.Skip(1))
        {
            if (dim.ValueCase != TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue)
            {
                throw new InvalidOperationException($"output '{output}' has a dynamic inner dimension; cannot flatten to a fixed width");
            }

            inner *= dim.DimValue;
        }

        var node = new NodeProto { OpType = "Flatten", Name = $"{newName}_flatten" };
        node.Input.Add(output);
        node.Output.Add(newName);
        node.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
        _graph.Node.Add(node);

        var flattened = value.Clone();
        flattened.Name = newName;
        var shape = flattened.Type.TensorType.Shape.Dim;
        var batch = shape[0];
        shape.Clear();
        shape.Add(batch);
        shape.Add(new TensorShapeProto.Types.Dimension { DimValue = inner });
        var index = _graph.Output.IndexOf(value);
        _graph.Output[index] = flattened;
    }

    private void Rename(ValueInfoProto value, string from, string to)
    {
        if (from == to)
        {
            return;
        }

        if (_graph.Input.Any(i => i.Name == to) || _graph.Output.Any(o => o.Name == to) || _graph.Node.Any(n => n.Output.Contains(to)))
        {
            throw new InvalidOperationException($"the graph already has a tensor named '{to}'");
        }

        value.Name = to;
        foreach (var node in _graph.Node)
        {
            Replace(node.Input, from, to);
            Replace(node.Output, from, to);
        }

        foreach (var info in _graph.ValueInfo.Where(v => v.Name == from))
        {
            info.Name = to;
        }
    }

    private static void Replace(Google.Protobuf.Collections.RepeatedField<string> names, string from, string to)
    {
        for (var i = 0; i < names.Count; i++)
        {
            if (names[i] == from)
            {
                names[i] = to;
            }
        }
    }

    private static ValueInfoProto Require(IEnumerable<ValueInfoProto> values, string name, string kind) =>
        values.FirstOrDefault(v => v.Name == name)
        ?? throw new InvalidOperationException($"the graph has no {kind} named '{name}'; it has {string.Join(", ", values.Select(v => $"'{v.Name}'"))}");
}
