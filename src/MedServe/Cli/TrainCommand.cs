using System.CommandLine;
using System.Globalization;
using MedServe.Training.BreastCancer;

namespace MedServe.Cli;

/// <summary><c>medserve train</c>: trains the breast-cancer model and writes its ONNX file.</summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var data = new Option<string>("--data") { Description = "The WDBC CSV (30 features, then 'malignant')", Required = true };
        var output = new Option<string>("--output") { Description = "Where to write model.onnx", Required = true };
        var seed = new Option<int>("--seed") { Description = "Seed of the train/test split and the trainer", DefaultValueFactory = _ => 42 };

        var command = new Command("train", "Train the breast-cancer classifier with ML.NET and export it to ONNX") { data, output, seed };
        command.SetAction(parse =>
        {
            var report = BreastCancerTrainer.Train(parse.GetRequiredValue(data), parse.GetRequiredValue(output), parse.GetValue(seed));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"trained on {report.TrainRows} rows; held-out AUROC {report.HeldOutAuroc:F4} on {report.TestRows} rows (ML.NET's own evaluation: {report.MlNetAuroc:F4})"));
            return 0;
        });
        return command;
    }
}
