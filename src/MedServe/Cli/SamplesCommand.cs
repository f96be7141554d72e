using System.CommandLine;

namespace MedServe.Cli;

/// <summary><c>medserve samples DIR</c>: writes the sample models into a repository folder (a container image provisions them at build time so).</summary>
internal static class SamplesCommand
{
    public static Command Create()
    {
        var folder = new Argument<DirectoryInfo>("repository") { Description = "The model repository folder to write breast-cancer, resnet18 and risk into" };
        var command = new Command("samples", "Provision the sample models into a repository folder") { folder };
        command.SetAction(parse =>
        {
            using var logging = Microsoft.Extensions.Logging.LoggerFactory.Create(b => b.AddSimpleConsole());
            MedServe.Samples.SampleModels.Provision(parse.GetValue(folder)!.FullName, logging.CreateLogger("MedServe.Samples"));
            return 0;
        });
        return command;
    }
}
