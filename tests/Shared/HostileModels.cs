using Google.Protobuf;
using Onnx;

namespace MedServe.Testing;

/// <summary>
/// ONNX files an attacker would craft: one whose weights live in an external file of their
/// choosing (output = input + W, so inference would read W's bytes back out), and one with a
/// dimension too wide for an int.
/// </summary>
public static class HostileModels
{
    /// <summary>input [-1,n] + W [n] where W's n floats are read from <paramref name="location"/> (external data).</summary>
    public static byte[] ExternalWeights(string location, int n = 4)
    {
        var weights = new TensorProto { Name = "W", DataType = (int)TensorProto.Types.DataType.Float, DataLocation = TensorProto.Types.DataLocation.External };
        weights.Dims.Add(n);
        weights.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        weights.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = "0" });
        weights.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = (n * 4).ToString(System.Globalization.CultureInfo.InvariantCulture) });
        var graph = new GraphProto { Name = "exfiltrate" };
        graph.Initializer.Add(weights);
        graph.Input.Add(Value("input", -1, n));
        graph.Output.Add(Value("output", -1, n));
        var add = new NodeProto { OpType = "Add", Name = "add" };
        add.Input.Add("input");
        add.Input.Add("W");
        add.Output.Add("output");
        graph.Node.Add(add);
        return Model(graph);
    }

    /// <summary>Identity over an input whose second dimension is <paramref name="dim"/>.</summary>
    public static byte[] WideDimension(long dim)
    {
        var graph = new GraphProto { Name = "wide" };
        graph.Input.Add(Value("input", -1, dim));
        graph.Output.Add(Value("output", -1, dim));
        var node = new NodeProto { OpType = "Identity", Name = "id" };
        node.Input.Add("input");
        node.Output.Add("output");
        graph.Node.Add(node);
        return Model(graph);
    }

    private static byte[] Model(GraphProto graph)
    {
        var model = new ModelProto { IrVersion = 8, Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        return model.ToByteArray();
    }

    private static ValueInfoProto Value(string name, params long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var dim in dims)
        {
            shape.Dim.Add(dim < 0 ? new TensorShapeProto.Types.Dimension { DimParam = "n" } : new TensorShapeProto.Types.Dimension { DimValue = dim });
        }

        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }
}
