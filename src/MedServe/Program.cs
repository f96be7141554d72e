using System.CommandLine;
using MedServe.Cli;

var root = new RootCommand("MedServe: a model server for clinical AI (Open Inference Protocol v2)")
{
    ServeCommand.Create(),
    TrainCommand.Create(),
    ModelsCommand.Create(),
    KeysCommand.Create(),
    AuditCommand.Create(),
    StatsCommand.Create(),
    OutcomesCommand.Create(),
    PerformanceCommand.Create(),
    DriftCommand.Create(),
    ReportCommand.Create(),
    ExperimentsCommand.Create(),
    SamplesCommand.Create(),
};
foreach (var command in BackupCommand.Create())
{
    root.Add(command);
}

return await root.Parse(args).InvokeAsync();

/// <summary>Visible to functional tests.</summary>
public partial class Program;
