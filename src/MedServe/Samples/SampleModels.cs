using MedServe.Onnx.Graph;
using MedServe.Training.BreastCancer;
using Microsoft.Extensions.Logging;

namespace MedServe.Samples;

/// <summary>
/// Writes the sample clinical models into an empty repository on first start, so that
/// <c>medserve serve</c> on a fresh data dir serves something real:
/// breast-cancer (trained here with ML.NET), resnet18 (ImageNet ResNet-18 made batchable) and
/// risk (the FastAPI peer's network, for benchmarks). Source files ship in the samples/ folder
/// next to the executable.
/// </summary>
public static partial class SampleModels
{
    public static string SourceDirectory => Path.Combine(AppContext.BaseDirectory, "samples");

    public static void Provision(string repository, ILogger logger)
    {
        Directory.CreateDirectory(repository);
        Try(logger, "breast-cancer", () => ProvisionBreastCancer(repository, logger));
        Try(logger, "resnet18", () => ProvisionResNet18(repository));
        Try(logger, "risk", () => ProvisionRisk(repository));
    }

    public static void ProvisionBreastCancer(string repository, ILogger? logger = null)
    {
        var folder = Path.Combine(repository, "breast-cancer");
        var report = BreastCancerTrainer.Train(Path.Combine(SourceDirectory, "wdbc.csv"), Path.Combine(folder, "1", "model.onnx"));
        var features = string.Join(", ", File.ReadLines(Path.Combine(SourceDirectory, "wdbc.csv")).First().Split(',')[..30].Select(name => $"\"{name}\""));
        File.WriteAllText(Path.Combine(folder, "config.pbtxt"), $$"""
            # Breast cancer (Wisconsin Diagnostic): probability that a biopsied mass is malignant.
            # Trained by MedServe with ML.NET (medserve train); features in data/wdbc.csv's column order.
            name: "breast-cancer"
            platform: "onnxruntime_onnx"
            max_batch_size: 64
            input [ { name: "features", data_type: TYPE_FP32, dims: [ 30 ] } ]
            output [ { name: "probability", data_type: TYPE_FP32, dims: [ 1 ] } ]
            # A tiny model: two single-threaded sessions beat one spread over both cores.
            instance_group [ { kind: KIND_CPU, count: 2 } ]
            parameters { key: "intra_op_thread_count" value { string_value: "1" } }
            dynamic_batching { }
            # MedServe's monitoring: the score, its threshold, the subgroups a client may send, the wdbc column names.
            monitoring {
              score_output: "probability"
              threshold: 0.5
              subgroups: [ "site", "age_band" ]
              subgroup_margin: 0.05
              output_range { min: 0 max: 1 }
              feature_names: [ {{features}} ]
            }
            """);
        File.WriteAllText(Path.Combine(folder, "1", "training.json"), System.Text.Json.JsonSerializer.Serialize(report));

        // Its drift reference: the training split, as the model saw it (MedServe scores it for the output's reference).
        var data = WdbcDataset.Load(Path.Combine(SourceDirectory, "wdbc.csv"));
        var (train, _) = data.Split(0.25, report.Seed);
        var header = string.Join(",", File.ReadLines(Path.Combine(SourceDirectory, "wdbc.csv")).First().Split(',')[..30]);
        File.WriteAllLines(Path.Combine(folder, MedServe.Drift.DriftApi.ReferenceFileName),
            [header, .. train.Select(i => string.Join(",", data.Features[i].Select(v => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture))))]);
        if (logger is not null)
        {
            LogTrained(logger, report.HeldOutAuroc, report.TestRows);
        }
    }

    public static void ProvisionResNet18(string repository)
    {
        var folder = Path.Combine(repository, "resnet18");
        OnnxGraphEditor.Edit(Path.Combine(SourceDirectory, "ResNet18.onnx"), Path.Combine(folder, "1", "model.onnx"), graph =>
        {
            graph.RenameInput("Input247", "image");
            graph.MakeBatchDynamic("batch");
            graph.FlattenOutput("Pooling395_Output_0", "embedding");
        });
        File.WriteAllText(Path.Combine(folder, "config.pbtxt"), """
            # ImageNet ResNet-18 backbone (from Microsoft.ML.DnnImageFeaturizer.ResNet18), without the
            # classifier head: a 512-wide image embedding. Input: normalized RGB, channels first.
            name: "resnet18"
            platform: "onnxruntime_onnx"
            max_batch_size: 32
            input [ { name: "image", data_type: TYPE_FP32, dims: [ 3, 224, 224 ] } ]
            output [ { name: "embedding", data_type: TYPE_FP32, dims: [ 512 ] } ]
            # One session using every core; requests that queue behind it run together as a batch.
            instance_group [ { kind: KIND_CPU, count: 1 } ]
            dynamic_batching { max_queue_delay_microseconds: 0 }
            """);
    }

    public static void ProvisionRisk(string repository)
    {
        var folder = Path.Combine(repository, "risk");
        Directory.CreateDirectory(Path.Combine(folder, "1"));
        File.Copy(Path.Combine(SourceDirectory, "risk.onnx"), Path.Combine(folder, "1", "model.onnx"), overwrite: true);
        File.WriteAllText(Path.Combine(folder, "config.pbtxt"), """
            # The FastAPI peer's network (shared/bench/fastapi-baseline): a 30 -> 64 -> 1 MLP with a sigmoid.
            name: "risk"
            platform: "onnxruntime_onnx"
            max_batch_size: 64
            input [ { name: "input", data_type: TYPE_FP32, dims: [ 30 ] } ]
            output [ { name: "output", data_type: TYPE_FP32, dims: [ 1 ] } ]
            instance_group [ { kind: KIND_CPU, count: 2 } ]
            parameters { key: "intra_op_thread_count" value { string_value: "1" } }
            dynamic_batching { }
            """);
    }

    private static void Try(ILogger logger, string model, Action provision)
    {
        try
        {
            provision();
            LogProvisioned(logger, model);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or InvalidDataException or UnauthorizedAccessException
            or Microsoft.ML.OnnxRuntime.OnnxRuntimeException or Google.Protobuf.InvalidProtocolBufferException)
        {
            LogProvisionFailed(logger, model, e.Message);
        }
    }

    [LoggerMessage(EventId = 300, Level = LogLevel.Information, Message = "Provisioned sample model {Model}")]
    private static partial void LogProvisioned(ILogger logger, string model);

    [LoggerMessage(EventId = 301, Level = LogLevel.Error, Message = "Could not provision sample model {Model}: {Reason}")]
    private static partial void LogProvisionFailed(ILogger logger, string model, string reason);

    [LoggerMessage(EventId = 302, Level = LogLevel.Information, Message = "Trained breast-cancer: held-out AUROC {Auroc:F4} on {Rows} rows")]
    private static partial void LogTrained(ILogger logger, double auroc, int rows);
}
