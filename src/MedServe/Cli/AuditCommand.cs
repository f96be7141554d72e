using System.CommandLine;
using System.Security.Cryptography;
using MedServe.Compliance.Audit;
using MedServe.Security;

namespace MedServe.Cli;

/// <summary>
/// <c>medserve audit verify/export</c>, on the audit store itself (a data dir, or a copy of one):
/// an auditor needs only the files, the public signing key and this tool, not a running server.
/// </summary>
internal static class AuditCommand
{
    public static Command Create()
    {
        var dataDir = new Option<string>("--data-dir") { Description = "The server's data dir (default .medserve)", DefaultValueFactory = _ => ".medserve", Recursive = true };
        var command = new Command("audit", "Verify and export the audit trail") { dataDir };
        command.Add(Verify(dataDir));
        command.Add(Export(dataDir));
        return command;
    }

    private static Command Verify(Option<string> dataDir)
    {
        var command = new Command("verify", "Check the whole hash chain and its signed checkpoints; exit 1 naming the first bad record");
        command.SetAction(async (parse, cancellationToken) =>
        {
            await using var log = await Open(parse.GetValue(dataDir)!);
            if (log is null)
            {
                return 2;
            }

            var verdict = await log.VerifyAsync(cancellationToken);
            Console.WriteLine(verdict.Intact
                ? $"intact: {verdict.Records} records, every hash and checkpoint signature checks"
                : $"NOT INTACT: {verdict.Problem}");
            return verdict.Intact ? 0 : 1;
        });
        return command;
    }

    private static Command Export(Option<string> dataDir)
    {
        var from = new Option<string>("--from") { Description = "Start time, ISO 8601, inclusive (default: the beginning)" };
        var to = new Option<string>("--to") { Description = "End time, ISO 8601, exclusive (default: now)" };
        var output = new Option<string>("--out") { Description = "NDJSON file to write (default: standard output)" };
        var command = new Command("export", "Write records as FHIR R4 AuditEvent resources, one JSON per line (NDJSON)") { from, to, output };
        command.SetAction(async (parse, cancellationToken) =>
        {
            if (!AuditTimeRange.TryParse(parse.GetValue(from), parse.GetValue(to), out var start, out var end))
            {
                Console.Error.WriteLine($"medserve: --from and --to {AuditTimeRange.Expected}");
                return 2;
            }

            await using var log = await Open(parse.GetValue(dataDir)!);
            if (log is null)
            {
                return 2;
            }

            var records = await log.ReadRangeAsync(start, end, cancellationToken);
            var path = parse.GetValue(output);
            await using var file = path is null ? null : new StreamWriter(path);
            var count = await FhirAuditExport.WriteNdjsonAsync(records, file ?? Console.Out, "MedServe", cancellationToken);
            if (path is not null)
            {
                Console.WriteLine($"wrote {count} AuditEvent resources to {path}");
            }

            return 0;
        });
        return command;
    }

    private static async Task<SqliteAuditStore?> Open(string dataDir)
    {
        var secrets = new ServerSecrets(Path.GetFullPath(dataDir));
        var database = Path.Combine(Path.GetFullPath(dataDir), "audit.db");
        if (!File.Exists(database) || !File.Exists(secrets.AuditVerifyingKeyPath))
        {
            Console.Error.WriteLine($"medserve: no audit trail in {Path.GetFullPath(dataDir)} (expected audit.db and secrets/audit-signing.pub.pem)");
            return null;
        }

        var key = ECDsa.Create();
        key.ImportFromPem(await File.ReadAllTextAsync(secrets.AuditVerifyingKeyPath));
        return await SqliteAuditStore.OpenAsync(database, key);
    }
}
