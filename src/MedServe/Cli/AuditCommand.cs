using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using MedServe.Compliance.Audit;
using MedServe.Compliance.Journal;
using MedServe.Security;

namespace MedServe.Cli;

/// <summary>
/// <c>medserve audit verify/verify-replicas/export</c>, on the journal's files (a data dir, or a
/// copy of one): an auditor needs only the files, the pinned public key and this tool, not a
/// running server. They open the files (and the shared database) read-only and create nothing.
/// </summary>
internal static class AuditCommand
{
    public static Command Create()
    {
        var dataDir = new Option<string>("--data-dir") { Description = "The server's data dir (default .medserve)", DefaultValueFactory = _ => ".medserve", Recursive = true };
        var journal = new Option<string>("--journal") { Description = "The journal's folder (default <data-dir>/journal)", Recursive = true };
        var archive = new Option<string[]>("--archive") { Description = "A folder archived segments were moved to (MedServe:Journal:ArchiveFolder); may repeat", Recursive = true };
        var command = new Command("audit", "Verify and export the audit trail (the inference journal)") { dataDir, journal, archive };
        command.Add(Verify(dataDir, journal, archive));
        command.Add(VerifyReplicas(archive));
        command.Add(Export(dataDir, journal, archive));
        return command;
    }

    private static Command Verify(Option<string> dataDir, Option<string> journal, Option<string[]> archive)
    {
        var publicKey = new Option<string>("--public-key")
        {
            Description = "The pinned public key: a PEM file, or the base64 SPKI the server logs at start (also MEDSERVE_JOURNAL__PUBLIC_KEY)",
        };
        var anchor = new Option<string>("--anchor") { Description = "The anchor file (MedServe:Journal:AnchorPath; default <data-dir>/journal.anchor when present)" };
        var head = new Option<string>("--head") { Description = "A head from the server's log, '<record>:<hash>': the journal must reach it with that hash" };
        var trustDataDirKey = new Option<bool>("--trust-data-dir-key")
        {
            Description = "Use secrets/audit-signing.pub.pem from the data dir instead of a pinned key (it proves nothing against whoever can write the data dir)",
        };
        var command = new Command("verify", "Check the whole hash chain, its signed checkpoints and its head; exit 1 naming the first bad record")
        {
            publicKey, anchor, head, trustDataDirKey,
        };
        command.SetAction(parse =>
        {
            var root = Path.GetFullPath(parse.GetValue(dataDir)!);
            var folder = Folder(root, parse.GetValue(journal));
            if (folder is null)
            {
                return 2;
            }

            var key = PinnedKey(parse.GetValue(publicKey) ?? Environment.GetEnvironmentVariable("MEDSERVE_JOURNAL__PUBLIC_KEY"), root, parse.GetValue(trustDataDirKey));
            if (key is null)
            {
                return 2;
            }

            JournalHead? anchored;
            try
            {
                anchored = Anchor(parse.GetValue(anchor), parse.GetValue(head), root);
            }
            catch (FormatException e)
            {
                Console.Error.WriteLine($"medserve: {e.Message}");
                return 2;
            }

            if (anchored is null)
            {
                Console.Error.WriteLine("medserve: warning: no anchor and no --head: a journal whose last records were deleted cannot be told from a whole one");
            }

            var verdict = JournalVerifier.Verify(folder, key, anchored, Archives(parse.GetValue(archive)));
            Console.WriteLine(verdict.Intact
                ? $"intact: {verdict.Records} records, {verdict.Checkpoints} signed checkpoints, every hash and signature checks{(anchored is null ? "" : $", and the chain reaches the anchored head (record {anchored.Sequence})")}"
                : $"NOT INTACT: {verdict.Problem}");
            return verdict.Intact ? 0 : 1;
        });
        return command;
    }

    private static Command VerifyReplicas(Option<string[]> archive)
    {
        var dataDirs = new Argument<string[]>("data-dirs") { Description = "Each replica's data dir (or a copy of it): its replica.id and journal/", Arity = ArgumentArity.OneOrMore };
        var connection = new Option<string>("--connection-string")
        {
            Description = "The shared PostgreSQL (Npgsql form; default MEDSERVE_STORE__CONNECTIONSTRING); read in a read-only transaction",
        };
        var publicKeys = new Option<string[]>("--public-key")
        {
            Description = "A pinned public key (PEM file or base64 SPKI); repeat for replicas with keys of their own",
        };
        var trustStoreKeys = new Option<bool>("--trust-store-keys")
        {
            Description = "Use the public keys the replicas published to the database instead of pinned ones (it proves nothing against whoever can write the database)",
        };
        var command = new Command("verify-replicas", "Check every replica's chain against the head it published to the shared PostgreSQL; exit 1 if one is broken or was not given")
        {
            dataDirs, connection, publicKeys, trustStoreKeys,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var connectionString = parse.GetValue(connection) ?? Environment.GetEnvironmentVariable("MEDSERVE_STORE__CONNECTIONSTRING");
            if (string.IsNullOrWhiteSpace(connectionString))
            {
                Console.Error.WriteLine("medserve: give the shared PostgreSQL with --connection-string (or MEDSERVE_STORE__CONNECTIONSTRING)");
                return 2;
            }

            var trustStore = parse.GetValue(trustStoreKeys);
            var pinned = new List<(string Spki, ECDsa Key)>();
            foreach (var given in parse.GetValue(publicKeys) ?? [])
            {
                if (PinnedKey(given, "", trustDataDir: false) is not { } key)
                {
                    return 2;
                }

                pinned.Add((Convert.ToBase64String(key.ExportSubjectPublicKeyInfo()), key));
            }

            if (pinned.Count == 0 && !trustStore)
            {
                Console.Error.WriteLine("medserve: give the pinned public key(s) with --public-key; --trust-store-keys uses the keys the replicas published instead");
                return 2;
            }

            var replicas = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var dir in (parse.GetValue(dataDirs) ?? []).Select(Path.GetFullPath))
            {
                var idFile = Path.Combine(dir, "replica.id");
                var name = File.Exists(idFile) ? File.ReadAllText(idFile).Trim() : "";
                if (name.Length == 0)
                {
                    Console.Error.WriteLine($"medserve: {dir} has no replica.id: it is not the data dir of a replica on a shared PostgreSQL");
                    return 2;
                }

                if (!replicas.TryAdd(name, dir))
                {
                    Console.Error.WriteLine($"medserve: {replicas[name]} and {dir} are the same replica ({name}): give each replica once");
                    return 2;
                }
            }

            IReadOnlyList<PublishedHead> heads;
            try
            {
                heads = await SharedJournalHeads.ReadAllAsync(connectionString, cancellationToken);
            }
            catch (Exception e) when (e is Npgsql.NpgsqlException or ArgumentException or TimeoutException)
            {
                // Npgsql's messages name the host, never the password; an unreadable string names the keyword only.
                Console.Error.WriteLine($"medserve: the shared PostgreSQL cannot be read: {e.Message}");
                return 2;
            }

            if (heads.Count == 0)
            {
                Console.Error.WriteLine("medserve: no replica has published a journal head to this database (replicas publish when Store:Provider is postgres)");
                return 2;
            }

            var failed = 0;
            foreach (var published in heads)
            {
                var where = SharedJournalHeads.Describe(published);
                ECDsa? key = trustStore ? KeyOf(published.PublicKey) : pinned.FirstOrDefault(p => p.Spki == published.PublicKey).Key;
                if (key is null)
                {
                    failed++;
                    Console.WriteLine($"{published.Replica}: NOT INTACT: its checkpoints are signed by a key that was not pinned ({where})");
                }
                else if (!replicas.TryGetValue(published.Replica, out var dir))
                {
                    failed++;
                    Console.WriteLine($"{published.Replica}: NOT CHECKED: its data dir was not given ({where})");
                }
                else
                {
                    var verdict = JournalVerifier.Verify(Path.Combine(dir, "journal"), key, published.Head, Archives(parse.GetValue(archive)));
                    failed += verdict.Intact ? 0 : 1;
                    Console.WriteLine(verdict.Intact
                        ? $"{published.Replica}: intact: {verdict.Records} records, {verdict.Checkpoints} signed checkpoints, reaching its published head ({where})"
                        : $"{published.Replica}: NOT INTACT: {verdict.Problem}");
                }
            }

            foreach (var stranger in replicas.Keys.Except(heads.Select(h => h.Replica), StringComparer.Ordinal))
            {
                failed++;
                Console.WriteLine($"{stranger}: NOT CHECKED: {replicas[stranger]} is a replica that published no head to this database");
            }

            Console.WriteLine($"{heads.Count} replicas published heads; {failed} not intact or not checked");
            return failed == 0 ? 0 : 1;
        });
        return command;
    }

    private static ECDsa? KeyOf(string spki)
    {
        var key = ECDsa.Create();
        try
        {
            key.ImportSubjectPublicKeyInfo(Convert.FromBase64String(spki), out _);
            return key;
        }
        catch (Exception e) when (e is CryptographicException or FormatException)
        {
            key.Dispose();
            return null;
        }
    }

    private static Command Export(Option<string> dataDir, Option<string> journal, Option<string[]> archive)
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

            var folder = Folder(Path.GetFullPath(parse.GetValue(dataDir)!), parse.GetValue(journal));
            if (folder is null)
            {
                return 2;
            }

            var records = AuditJournal.ReadRange(folder, start, end, long.MaxValue, Archives(parse.GetValue(archive)));
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

    private static string[] Archives(string[]? folders) => (folders ?? []).Select(Path.GetFullPath).ToArray();

    private static string? Folder(string dataDir, string? journal)
    {
        var folder = Path.GetFullPath(journal ?? Path.Combine(dataDir, "journal"));
        if (Directory.Exists(folder))
        {
            return folder;
        }

        Console.Error.WriteLine(File.Exists(Path.Combine(dataDir, LegacyAuditImport.FileName))
            ? $"medserve: {dataDir} holds audit.db from before the journal and no journal yet: start the server once to import it (docs/security.md, \"The journal\")"
            : $"medserve: no journal at {folder}");
        return null;
    }

    private static ECDsa? PinnedKey(string? given, string dataDir, bool trustDataDir)
    {
        string? text = given;
        if (given is null)
        {
            if (!trustDataDir)
            {
                Console.Error.WriteLine("medserve: give the pinned public key with --public-key (the base64 key the server logs at start, or a PEM file). "
                    + "A key found beside the journal proves nothing against whoever could rewrite the journal; --trust-data-dir-key uses it anyway.");
                return null;
            }

            var path = new ServerSecrets(dataDir).AuditVerifyingKeyPath;
            if (!File.Exists(path))
            {
                Console.Error.WriteLine("medserve: no public key in the data dir (secrets/audit-signing.pub.pem)");
                return null;
            }

            text = File.ReadAllText(path);
        }
        else if (File.Exists(given))
        {
            text = File.ReadAllText(given);
        }

        var key = ECDsa.Create();
        try
        {
            if (text!.Contains("-----BEGIN", StringComparison.Ordinal))
            {
                key.ImportFromPem(text);
            }
            else
            {
                key.ImportSubjectPublicKeyInfo(Convert.FromBase64String(text.Trim()), out _);
            }

            return key;
        }
        catch (Exception e) when (e is CryptographicException or FormatException or ArgumentException)
        {
            key.Dispose();
            Console.Error.WriteLine("medserve: --public-key is neither a PEM public key file nor a base64 SubjectPublicKeyInfo");
            return null;
        }
    }

    private static JournalHead? Anchor(string? anchorPath, string? head, string dataDir)
    {
        if (head is not null)
        {
            var colon = head.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0 || !long.TryParse(head[..colon], NumberStyles.None, CultureInfo.InvariantCulture, out var sequence) || head.Length - colon - 1 != 64)
            {
                throw new FormatException("--head must read '<record>:<64 hex digits>', as the server logs it");
            }

            return new JournalHead(sequence, Convert.FromHexString(head[(colon + 1)..]), 0, [], []);
        }

        var path = anchorPath ?? Path.Combine(dataDir, "journal.anchor");
        if (anchorPath is not null && !File.Exists(path))
        {
            throw new FormatException("--anchor names no file");
        }

        return JournalAnchor.ReadFile(path);
    }
}
