using Google.Protobuf;
using Onnx;

namespace MedServe.IntegrationTests.Support;

/// <summary>
/// Writes a small real ONNX model with Identity nodes for each datatype (shape [-1, 3]), to round-trip every protocol datatype through ONNX Runtime.
/// </summary>
internal static class IdentityModel
{
    public static readonly (string Wire, TensorProto.Types.DataType Onnx)[] Types =
    [
        ("BOOL", TensorProto.Types.DataType.Bool), ("UINT8", TensorProto.Types.DataType.Uint8),
        ("UINT16", TensorProto.Types.DataType.Uint16), ("UINT32", TensorProto.Types.DataType.Uint32),
        ("UINT64", TensorProto.Types.DataType.Uint64), ("INT8", TensorProto.Types.DataType.Int8),
        ("INT16", TensorProto.Types.DataType.Int16), ("INT32", TensorProto.Types.DataType.Int32),
        ("INT64", TensorProto.Types.DataType.Int64), ("FP16", TensorProto.Types.DataType.Float16),
        ("FP32", TensorProto.Types.DataType.Float), ("FP64", TensorProto.Types.DataType.Double),
        ("BYTES", TensorProto.Types.DataType.String),
    ];

    /// <summary>Writes one model per datatype, <c>id-fp32</c> and so on: input <c>in</c>, outputs <c>out</c> and <c>copy</c>.</summary>
    public static void WriteAll(string repository)
    {
        foreach (var (wire, type) in Types)
        {
            var graph = new GraphProto { Name = "identity" };
            graph.Input.Add(Value("in", type));
            foreach (var output in new[] { "out", "copy" })
            {
                graph.Output.Add(Value(output, type));
                var node = new NodeProto { OpType = "Identity", Name = "id_" + output };
                node.Input.Add("in");
                node.Output.Add(output);
                graph.Node.Add(node);
            }

            var model = new ModelProto { IrVersion = 8, Graph = graph, ProducerName = "medserve-tests" };
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
            var path = Path.Combine(repository, ModelName(wire), "1", "model.onnx");
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllBytes(path, model.ToByteArray());
        }
    }

    public static string ModelName(string wire) => "id-" + wire.ToLowerInvariant();

    private static ValueInfoProto Value(string name, TensorProto.Types.DataType type)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "batch" });
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = 3 });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }
}
