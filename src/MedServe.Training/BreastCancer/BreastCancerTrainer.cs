using MedServe.Onnx.Graph;
using MedServe.Training.Metrics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;

namespace MedServe.Training.BreastCancer;

/// <summary>What a training run produced and how well it did on the held-out rows.</summary>
public sealed record TrainingReport(int Seed, int TrainRows, int TestRows, double HeldOutAuroc, double MlNetAuroc);

/// <summary>
/// Trains the breast-cancer sample: standardize the 30 features, then L-BFGS logistic
/// regression, with ML.NET on a fixed split. Exports ONNX with one input <c>features</c> FP32
/// [-1,30] and one output <c>probability</c> FP32 [-1,1] (probability of malignancy), and checks
/// the exported graph by scoring the held-out rows through ONNX Runtime.
/// </summary>
public static class BreastCancerTrainer
{
    public const string InputName = "features";
    public const string OutputName = "probability";

    public static TrainingReport Train(string csvPath, string onnxPath, int seed = 42, double testFraction = 0.25)
    {
        var data = WdbcDataset.Load(csvPath);
        var (trainRows, testRows) = data.Split(testFraction, seed);
        var ml = new MLContext(seed);

        var train = ml.Data.LoadFromEnumerable(trainRows.Select(i => new LabeledRow { Features = data.Features[i], Label = data.Labels[i] }));
        var pipeline = ml.Transforms.NormalizeMeanVariance("Features")
            .Append(ml.BinaryClassification.Trainers.LbfgsLogisticRegression(labelColumnName: "Label", featureColumnName: "Features"));
        var model = pipeline.Fit(train);

        var test = ml.Data.LoadFromEnumerable(testRows.Select(i => new LabeledRow { Features = data.Features[i], Label = data.Labels[i] }));
        var mlNetAuroc = ml.BinaryClassification.Evaluate(model.Transform(test)).AreaUnderRocCurve;

        // Export from a features-only schema, so Label is not a graph input.
        var featuresOnly = ml.Data.LoadFromEnumerable(new[] { new FeatureRow { Features = new float[WdbcDataset.FeatureCount] } });
        var exported = Path.GetTempFileName();
        try
        {
            using (var stream = File.Create(exported))
            {
                ml.Model.ConvertToOnnx(model, featuresOnly, stream, "Probability");
            }

            OnnxGraphEditor.Edit(exported, onnxPath, graph =>
            {
                graph.KeepOutputs(["Probability.output"]);
                graph.RenameInput("Features", InputName);
                graph.RenameOutput("Probability.output", OutputName);
                graph.MakeBatchDynamic("batch");
            });
        }
        finally
        {
            File.Delete(exported);
        }

        var scores = Score(onnxPath, testRows.Select(i => data.Features[i]).ToArray());
        var auroc = BinaryMetrics.Auroc(scores, testRows.Select(i => data.Labels[i]).ToArray());
        return new TrainingReport(seed, trainRows.Length, testRows.Length, auroc, mlNetAuroc);
    }

    /// <summary>Scores rows through the exported ONNX graph with ONNX Runtime.</summary>
    public static double[] Score(string onnxPath, float[][] rows)
    {
        using var session = new InferenceSession(onnxPath);
        var flat = rows.SelectMany(r => r).ToArray();
        using var input = OrtValue.CreateTensorValueFromMemory(flat, [rows.Length, WdbcDataset.FeatureCount]);
        using var outputs = session.Run(new RunOptions(), [InputName], [input], [OutputName]);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray().Select(p => (double)p).ToArray();
    }

    private sealed class LabeledRow
    {
        [VectorType(WdbcDataset.FeatureCount)]
        public float[] Features { get; set; } = [];

        public bool Label { get; set; }
    }

    private sealed class FeatureRow
    {
        [VectorType(WdbcDataset.FeatureCount)]
        public float[] Features { get; set; } = [];
    }
}
