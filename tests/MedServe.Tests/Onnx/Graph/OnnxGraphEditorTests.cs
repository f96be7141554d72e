using Google.Protobuf;
using MedServe.Onnx.Graph;
using Onnx;

namespace MedServe.Tests.Onnx.Graph;

public sealed class OnnxGraphEditorTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "medserve-onnx-" + Guid.NewGuid().ToString("N"));

    public OnnxGraphEditorTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static ValueInfoProto Value(string name, params long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var dim in dims)
        {
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = dim });
        }

        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    /// <summary>x [1,3] + w -> sum [1,3,1,1]; also an auxiliary output "aux" [1,3]; w is an initializer listed as an input.</summary>
    private string WriteModel()
    {
        var graph = new GraphProto { Name = "g" };
        graph.Input.Add(Value("x", 1, 3));
        graph.Input.Add(Value("w", 3));
        graph.Initializer.Add(new TensorProto { Name = "w", DataType = (int)TensorProto.Types.DataType.Float, Dims = { 3 }, FloatData = { 1, 2, 3 } });
        var add = new NodeProto { OpType = "Add", Name = "add" };
        add.Input.Add("x");
        add.Input.Add("w");
        add.Output.Add("sum");
        graph.Node.Add(add);
        var identity = new NodeProto { OpType = "Identity", Name = "id" };
        identity.Input.Add("sum");
        identity.Output.Add("aux");
        graph.Node.Add(identity);
        graph.Output.Add(Value("sum", 1, 3, 1, 1));
        graph.Output.Add(Value("aux", 1, 3));
        graph.ValueInfo.Add(Value("sum", 1, 3, 1, 1));

        var model = new ModelProto { IrVersion = 8, Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        var path = Path.Combine(_folder, "source.onnx");
        File.WriteAllBytes(path, model.ToByteArray());
        return path;
    }

    private GraphProto EditAndRead(Action<OnnxGraphEditor> edit)
    {
        var destination = Path.Combine(_folder, "out", "model.onnx");
        OnnxGraphEditor.Edit(WriteModel(), destination, edit);
        Assert.False(File.Exists(destination + ".tmp"));
        return ModelProto.Parser.ParseFrom(File.ReadAllBytes(destination)).Graph;
    }

    [Fact]
    public void InputNames_LeaveOutInitializers()
    {
        List<string>? inputs = null;
        List<string>? outputs = null;

        EditAndRead(editor =>
        {
            inputs = editor.InputNames.ToList();
            outputs = editor.OutputNames.ToList();
        });

        Assert.Equal(["x"], inputs);
        Assert.Equal(["sum", "aux"], outputs);
    }

    [Fact]
    public void RenameInput_RenamesTheGraphInputAndEveryNodeUse()
    {
        var graph = EditAndRead(editor => editor.RenameInput("x", "features"));

        Assert.Equal("features", graph.Input[0].Name);
        Assert.Equal(["features", "w"], graph.Node[0].Input);
    }

    [Fact]
    public void RenameOutput_RenamesTheOutputProducerConsumerAndValueInfo()
    {
        var graph = EditAndRead(editor => editor.RenameOutput("sum", "logits"));

        Assert.Equal("logits", graph.Output[0].Name);
        Assert.Equal(["logits"], graph.Node[0].Output);
        Assert.Equal(["logits"], graph.Node[1].Input);
        Assert.Equal("logits", graph.ValueInfo[0].Name);
    }

    [Fact]
    public void Rename_ToAnExistingTensorName_IsRejected()
    {
        var error = Assert.Throws<InvalidOperationException>(() => EditAndRead(editor => editor.RenameOutput("sum", "aux")));

        Assert.Contains("'aux'", error.Message);
    }

    [Fact]
    public void Rename_UnknownTensor_ListsTheExistingOnes()
    {
        var error = Assert.Throws<InvalidOperationException>(() => EditAndRead(editor => editor.RenameInput("y", "z")));

        Assert.Contains("no input named 'y'", error.Message);
        Assert.Contains("'x'", error.Message);
    }

    [Fact]
    public void KeepOutputs_DropsTheOthers()
    {
        var graph = EditAndRead(editor => editor.KeepOutputs(["aux"]));

        Assert.Equal("aux", Assert.Single(graph.Output).Name);
    }

    [Fact]
    public void KeepOutputs_UnknownName_IsRejected()
    {
        Assert.Throws<InvalidOperationException>(() => EditAndRead(editor => editor.KeepOutputs(["aux", "nope"])));
    }

    [Fact]
    public void MakeBatchDynamic_MakesTheFirstDimSymbolicAndDropsValueInfo()
    {
        var graph = EditAndRead(editor => editor.MakeBatchDynamic("batch"));

        Assert.Equal("batch", graph.Input[0].Type.TensorType.Shape.Dim[0].DimParam);
        Assert.Equal(3, graph.Input[0].Type.TensorType.Shape.Dim[1].DimValue);
        Assert.Equal(3, graph.Input[1].Type.TensorType.Shape.Dim[0].DimValue);
        Assert.All(graph.Output, o => Assert.Equal("batch", o.Type.TensorType.Shape.Dim[0].DimParam));
        Assert.Empty(graph.ValueInfo);
    }

    [Fact]
    public void FlattenOutput_AppendsAFlattenNodeAndReplacesTheOutput()
    {
        var graph = EditAndRead(editor => editor.FlattenOutput("sum", "flat"));

        Assert.Equal(["flat", "aux"], graph.Output.Select(o => o.Name));
        Assert.Equal([1L, 3L], graph.Output[0].Type.TensorType.Shape.Dim.Select(d => d.DimValue));
        var flatten = graph.Node[^1];
        Assert.Equal("Flatten", flatten.OpType);
        Assert.Equal(["sum"], flatten.Input);
        Assert.Equal(["flat"], flatten.Output);
        Assert.Equal(1, Assert.Single(flatten.Attribute).I);
    }

    [Fact]
    public void FlattenOutput_AfterMakeBatchDynamic_KeepsTheSymbolicBatch()
    {
        var graph = EditAndRead(editor =>
        {
            editor.MakeBatchDynamic("N");
            editor.FlattenOutput("sum", "flat");
        });

        var dims = graph.Output[0].Type.TensorType.Shape.Dim;
        Assert.Equal("N", dims[0].DimParam);
        Assert.Equal(3, dims[1].DimValue);
    }
}
