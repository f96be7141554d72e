using Google.Protobuf;
using Onnx;

namespace MedServe.IntegrationTests.Support;

/// <summary>
/// Model "ab", three real ONNX versions of p = sigmoid(sum(in)) over an FP32 [-1, 3] input:
/// version 1 as is; version 2 takes the square root of the sum first, so a negative sum gives
/// NaN (a faulty candidate); version 3 also multiplies a 384x384 matrix eight times per call (a
/// slow one) before the same answer; version 4 negates the sum (valid outputs, ranked backwards);
/// version 5 is version 3 with 96 products (tens of milliseconds on any CPU here: a shadow whose
/// cost cannot be mistaken for a request's own).
/// </summary>
internal static class ExperimentModels
{
    public const string Name = "ab";

    public static void Write(string repository)
    {
        var folder = Path.Combine(repository, Name);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.pbtxt"), """
            name: "ab"
            platform: "onnxruntime_onnx"
            max_batch_size: 8
            version_policy: { all { } }
            input [ { name: "in", data_type: TYPE_FP32, dims: [ 3 ] } ]
            output [ { name: "p", data_type: TYPE_FP32, dims: [ 1 ] } ]
            monitoring { output_range { min: 0 max: 1 } }
            """);
        Save(folder, 1, Graph(nan: false, slow: false));
        Save(folder, 2, Graph(nan: true, slow: false));
        Save(folder, 3, Graph(nan: false, slow: true));
        Save(folder, 4, Graph(nan: false, slow: false, inverted: true));
        Save(folder, 5, Graph(nan: false, slow: true, products: 96));
    }

    private static GraphProto Graph(bool nan, bool slow, bool inverted = false, int products = 8)
    {
        var graph = new GraphProto { Name = "ab" };
        graph.Input.Add(Value("in", 3));
        graph.Output.Add(Value("p", 1));
        graph.Initializer.Add(new TensorProto { Name = "axes", DataType = (int)TensorProto.Types.DataType.Int64, Dims = { 1 }, Int64Data = { 1 } });
        graph.Node.Add(Node("ReduceSum", ["in", "axes"], ["sum"]));
        var last = "sum";
        if (nan)
        {
            graph.Node.Add(Node("Sqrt", [last], ["root"]));
            last = "root";
        }

        if (slow)
        {
            const int size = 384;
            var weights = new TensorProto { Name = "w", DataType = (int)TensorProto.Types.DataType.Float, Dims = { size, size } };
            var random = new Random(1);
            for (var i = 0; i < size * size; i++)
            {
                weights.FloatData.Add((float)(random.NextDouble() * 0.01));
            }

            graph.Initializer.Add(weights);
            graph.Initializer.Add(new TensorProto { Name = "zero", DataType = (int)TensorProto.Types.DataType.Float, Dims = { }, FloatData = { 0f } });

            // The matrix depends on the input (plus zero times its mean), so ONNX Runtime cannot fold the products away at load.
            graph.Node.Add(Node("ReduceMean", ["sum"], ["level"], keepdims: 0));
            graph.Node.Add(Node("Mul", ["level", "zero"], ["nil"]));
            graph.Node.Add(Node("Add", ["w", "nil"], ["w_in"]));
            var current = "w_in";
            for (var k = 0; k < products; k++)
            {
                graph.Node.Add(Node("MatMul", [current, "w_in"], [$"m{k}"]));
                current = $"m{k}";
            }

            // Zero times the product, added: the answer is unchanged, the work is done.
            graph.Node.Add(Node("ReduceMean", [current], ["mean"], keepdims: 0));
            graph.Node.Add(Node("Mul", ["mean", "zero"], ["nothing"]));
            graph.Node.Add(Node("Add", [last, "nothing"], ["slow"]));
            last = "slow";
        }

        if (inverted)
        {
            // Version 4 ranks every case backwards: valid outputs, the worst discrimination.
            graph.Node.Add(Node("Neg", [last], ["negated"]));
            last = "negated";
        }

        graph.Node.Add(Node("Sigmoid", [last], ["p"]));
        return graph;
    }

    private static NodeProto Node(string op, string[] inputs, string[] outputs, int? keepdims = null)
    {
        var node = new NodeProto { OpType = op, Name = op + "_" + outputs[0] };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        if (keepdims is { } keep)
        {
            node.Attribute.Add(new AttributeProto { Name = "keepdims", Type = AttributeProto.Types.AttributeType.Int, I = keep });
        }

        return node;
    }

    private static void Save(string folder, int version, GraphProto graph)
    {
        var model = new ModelProto { IrVersion = 8, Graph = graph, ProducerName = "medserve-tests" };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        var path = Path.Combine(folder, version.ToString(System.Globalization.CultureInfo.InvariantCulture), "model.onnx");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, model.ToByteArray());
    }

    private static ValueInfoProto Value(string name, long width)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "batch" });
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = width });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } } };
    }
}
