using System.Globalization;
using System.Text;
using System.Text.Json;
using MedServe.Compliance.Audit;
using MedServe.Compliance.Encryption;
using MedServe.Compliance.Predictions;
using MedServe.Http.V2;
using MedServe.Inference;
using MedServe.Lifecycle;
using MedServe.Predictions;
using MedServe.Repository;
using MedServe.Security;
using MedServe.Stats;
using MedServe.Stats.Drift;

namespace MedServe.Drift;

/// <summary>
/// PUT /v1/models/{model}/drift/reference: a reference from a period of the model's own logged
/// traffic ({"from", "to", "version"}), or an uploaded data set (CSV with a header row, or NDJSON
/// of input rows, scored through the model so its outputs have a reference too). GET
/// /v1/models/{model}/drift: each feature of a window of logged traffic against that reference,
/// and the rows as a whole (<see cref="DriftDetector"/>).
/// </summary>
public static class DriftApi
{
    /// <summary>The file a model folder may ship as its reference (the breast-cancer sample ships its training split).</summary>
    public const string ReferenceFileName = "drift_reference.csv";

    public const int MaxRows = 100_000;

    /// <summary>Fewer window rows than this give the counts and a sentence, not tests.</summary>
    public const int MinimumWindowRows = 20;

    public static IEndpointRouteBuilder MapDriftApi(this IEndpointRouteBuilder routes)
    {
        routes.MapPut("/v1/models/{model}/drift/reference", PutReference).RequireAuthorization(Scopes.ModelsWrite).WithMetadata(new AuditedEndpoint());
        routes.MapGet("/v1/models/{model}/drift", Get).RequireAuthorization(Scopes.ModelsRead).WithMetadata(new AuditedEndpoint());
        return routes;
    }

    private static async Task PutReference(HttpContext context, string model, IDriftReferenceStore references, IPredictionStore store, PredictionProjectionService projection,
        EnvelopeEncryption envelopes, ModelManager models)
    {
        var version = context.Request.Query["version"].ToString();
        var contentType = context.Request.ContentType ?? "";
        try
        {
            (IReadOnlyList<string> Names, List<double[]> Rows) data;
            string source;
            if (contentType.StartsWith("text/csv", StringComparison.OrdinalIgnoreCase) || contentType.StartsWith("application/x-ndjson", StringComparison.OrdinalIgnoreCase))
            {
                using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
                var text = await reader.ReadToEndAsync(context.RequestAborted).ConfigureAwait(false);
                var spec = Spec(models, model, version);
                var uploaded = contentType.StartsWith("text/csv", StringComparison.OrdinalIgnoreCase) ? ReadCsv(text, spec) : ReadNdjson(text, spec);
                data = await WithOutputsAsync(models, model, version.Length > 0 ? version : null, uploaded, context.RequestAborted).ConfigureAwait(false);
                source = contentType.StartsWith("text/csv", StringComparison.OrdinalIgnoreCase) ? "csv upload" : "ndjson upload";
            }
            else
            {
                using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
                JsonDocument body;
                try
                {
                    body = JsonDocument.Parse(await reader.ReadToEndAsync(context.RequestAborted).ConfigureAwait(false));
                }
                catch (JsonException e)
                {
                    throw new StatisticsException($"the body is not JSON: {e.Message}");
                }

                using var parsed = body;
                var root = body.RootElement.ValueKind == JsonValueKind.Object ? body.RootElement : throw new StatisticsException("expected a JSON object {\"from\", \"to\", \"version\"}");
                string? Text(string name) => root.TryGetProperty(name, out var v) ? (v.ValueKind == JsonValueKind.String ? v.GetString() : throw new StatisticsException($"'{name}' must be a string")) : null;
                if (Text("version") is { Length: > 0 } named)
                {
                    version = named;
                }

                if (!AuditTimeRange.TryParse(Text("from"), Text("to"), out var from, out var to) || Text("from") is null || Text("to") is null)
                {
                    throw new StatisticsException("give 'from' and 'to' (ISO 8601 times) for a reference from logged traffic, or upload text/csv or application/x-ndjson rows");
                }

                await projection.CatchUpAsync(context.RequestAborted).ConfigureAwait(false);
                data = await WindowAsync(store, envelopes, Spec(models, model, version), model, version.Length > 0 ? version : null, from, to, context.RequestAborted).ConfigureAwait(false)
                    ?? throw new StatisticsException("no logged predictions with their inputs in that period");
                source = $"traffic {from:O} to {to:O}";
            }

            var reference = DriftReference.Build(data.Names, data.Rows);
            var stored = await references.SaveAsync(model, version, source, AuditTrail.Actor(context.User), reference.ToJson(), context.RequestAborted).ConfigureAwait(false);
            await ApiResponses.WriteJsonAsync(context.Response, StatusCodes.Status200OK, w =>
            {
                w.WriteStartObject();
                w.WriteString("model", model);
                w.WriteString("version", version);
                w.WriteNumber("revision", stored.Revision);
                w.WriteString("source", source);
                w.WriteNumber("rows", reference.RowCount);
                w.WriteNumber("features", reference.Features.Count);
                w.WriteEndObject();
            }).ConfigureAwait(false);
        }
        catch (StatisticsException e)
        {
            await ApiResponses.WriteErrorAsync(context.Response, StatusCodes.Status400BadRequest, e.Message).ConfigureAwait(false);
        }
    }

    private static async Task Get(HttpContext context, string model, IDriftReferenceStore references, IPredictionStore store, PredictionProjectionService projection,
        EnvelopeEncryption envelopes, ModelManager models, Microsoft.Extensions.Options.IOptions<Hosting.ServerOptions> options)
    {
        var query = context.Request.Query;
        var version = query["version"].ToString() is { Length: > 0 } v ? v : null;
        if (!AuditTimeRange.TryParse(query["from"], query["to"], out var from, out var to))
        {
            await ApiResponses.WriteErrorAsync(context.Response, StatusCodes.Status400BadRequest, "'from' and 'to' " + AuditTimeRange.Expected).ConfigureAwait(false);
            return;
        }

        try
        {
            var write = await DriftReportAsync(model, version, from, to, references, store, projection, envelopes, models, options.Value.ResolvedModelRepository, context.RequestAborted).ConfigureAwait(false);
            if (write is null)
            {
                await ApiResponses.WriteErrorAsync(context.Response, StatusCodes.Status404NotFound,
                    $"model '{model}' has no drift reference: PUT /v1/models/{model}/drift/reference sets one").ConfigureAwait(false);
                return;
            }

            await ApiResponses.WriteJsonAsync(context.Response, StatusCodes.Status200OK, write).ConfigureAwait(false);
        }
        catch (StatisticsException e)
        {
            await ApiResponses.WriteErrorAsync(context.Response, StatusCodes.Status400BadRequest, e.Message).ConfigureAwait(false);
        }
    }

    /// <summary>The drift report of a version and window (the endpoint's answer, and the figures alert rules watch); null when the model has no reference.</summary>
    public static async Task<Action<Utf8JsonWriter>?> DriftReportAsync(string model, string? version, DateTimeOffset from, DateTimeOffset to, IDriftReferenceStore references,
        IPredictionStore store, PredictionProjectionService projection, EnvelopeEncryption envelopes, ModelManager models, string repository, CancellationToken cancellationToken)
    {
        var spec = Spec(models, model, version ?? "");
        var stored = await ReferenceAsync(references, models, model, version, repository, cancellationToken).ConfigureAwait(false);
        if (stored is null)
        {
            return null;
        }

        var reference = DriftReference.FromJson(stored.Summary);
        await projection.CatchUpAsync(cancellationToken).ConfigureAwait(false);
        var window = await WindowAsync(store, envelopes, spec, model, version, from, to, cancellationToken).ConfigureAwait(false);
        var report = Judge(reference, window, spec);
        return w => DriftReportJson.Write(w, model, version, stored, reference, window?.Rows.Count ?? 0, report);
    }

    /// <summary>The reference's features, in its order, picked by name from the window's rows; null with fewer than the minimum rows.</summary>
    public static DriftReport? Judge(DriftReference reference, (IReadOnlyList<string> Names, List<double[]> Rows)? window, MonitoringSpec spec)
    {
        if (window is not { } w || w.Rows.Count < MinimumWindowRows)
        {
            return null;
        }

        var columns = w.Names.Select((name, i) => (name, i)).ToDictionary(c => c.name, c => c.i, StringComparer.Ordinal);
        var positions = reference.Features.Select(f => columns.GetValueOrDefault(f.Name, -1)).ToArray();
        var missing = reference.Features.Where((f, i) => positions[i] < 0).Select(f => f.Name).ToList();
        if (missing.Count > 0)
        {
            throw new StatisticsException($"the window's predictions lack the reference's features {string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", ..." : "")}");
        }

        var rows = w.Rows.Select(r => positions.Select(p => r[p]).ToArray()).ToList();
        return DriftDetector.Detect(reference.Features, reference.Rows, rows, new DriftOptions
        {
            Alpha = spec.DriftAlpha,
            DriftShare = spec.DriftShare,
            Overrides = spec.DriftOverrides.ToDictionary(o => o.Key, o => new FeatureOverride(o.Value.Test, o.Value.Threshold)),
        });
    }

    /// <summary>The stored reference, or (once) the model folder's drift_reference.csv, imported as revision 1.</summary>
    public static async Task<StoredReference?> ReferenceAsync(IDriftReferenceStore references, ModelManager models, string model, string? version, string repository, CancellationToken cancellationToken)
    {
        if (await references.FindAsync(model, version, cancellationToken).ConfigureAwait(false) is { } stored)
        {
            return stored;
        }

        // A fixed file name in the model's own folder: nothing a request names becomes a path.
        if (!ModelNames.IsValid(model) || !File.Exists(Path.Combine(repository, model, ReferenceFileName)))
        {
            return null;
        }

        var spec = Spec(models, model, version ?? "");
        var uploaded = ReadCsv(await File.ReadAllTextAsync(Path.Combine(repository, model, ReferenceFileName), cancellationToken).ConfigureAwait(false), spec);
        var data = await WithOutputsAsync(models, model, version, uploaded, cancellationToken).ConfigureAwait(false);
        return await references.SaveAsync(model, "", "model folder " + ReferenceFileName, "medserve", DriftReference.Build(data.Names, data.Rows).ToJson(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Every logged prediction of the window with its inputs, as rows (those whose features differ from the first's are left out).</summary>
    public static async Task<(IReadOnlyList<string> Names, List<double[]> Rows)?> WindowAsync(IPredictionStore store, EnvelopeEncryption envelopes, MonitoringSpec spec,
        string model, string? version, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken)
    {
        IReadOnlyList<string>? names = null;
        var rows = new List<double[]>();
        foreach (var prediction in await store.QueryAsync(new PredictionQuery(model, version, from, to, null, 0, MaxRows), cancellationToken).ConfigureAwait(false))
        {
            if (prediction.Payload.Length == 0
                || DriftRows.From(PredictionPayload.Decode(envelopes.Decrypt(prediction.Payload, Encoding.UTF8.GetBytes(prediction.RequestId))), spec) is not { } these)
            {
                continue;
            }

            names ??= these.Names;
            if (these.Names.SequenceEqual(names))
            {
                rows.AddRange(these.Rows);
            }
        }

        return names is null ? null : (names, rows);
    }

    private static MonitoringSpec Spec(ModelManager models, string model, string version)
    {
        try
        {
            return models.Find(model, version.Length > 0 ? version : null).Config.Monitoring;
        }
        catch (InferenceException)
        {
            return MonitoringSpec.Default;
        }
    }

    /// <summary>CSV with a header row; columns named as the spec's features are taken in the spec's order, else as they come.</summary>
    public static (IReadOnlyList<string> Names, List<double[]> Rows) ReadCsv(string text, MonitoringSpec spec)
    {
        var lines = text.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0).ToList();
        if (lines.Count < 3)
        {
            throw new StatisticsException("the CSV needs a header row and at least 2 rows");
        }

        if (lines.Count - 1 > MaxRows)
        {
            throw new StatisticsException($"at most {MaxRows} reference rows; this CSV has {lines.Count - 1}");
        }

        var header = lines[0].Split(',').Select(h => h.Trim().Trim('"')).ToArray();
        if (header.Any(h => h.Length is 0 or > 128) || header.Distinct(StringComparer.Ordinal).Count() != header.Length)
        {
            throw new StatisticsException("the CSV header must name every column once (1 to 128 characters each)");
        }

        var columns = spec.FeatureNames.Count > 0 && spec.FeatureNames.All(header.Contains)
            ? spec.FeatureNames.Select(n => Array.IndexOf(header, n)).ToArray()
            : Enumerable.Range(0, header.Length).ToArray();
        var rows = new List<double[]>(lines.Count - 1);
        for (var i = 1; i < lines.Count; i++)
        {
            var cells = lines[i].Split(',');
            if (cells.Length != header.Length)
            {
                throw new StatisticsException($"CSV line {i + 1}: {cells.Length} cells where the header has {header.Length}");
            }

            rows.Add([.. columns.Select(c => double.TryParse(cells[c], NumberStyles.Float, CultureInfo.InvariantCulture, out var x) && double.IsFinite(x)
                ? x
                : throw new StatisticsException($"CSV line {i + 1}, column '{header[c]}': not a finite number"))]);
        }

        return ([.. columns.Select(c => header[c])], rows);
    }

    /// <summary>NDJSON: each line an array of numbers (in input order) or an object of feature name to number.</summary>
    public static (IReadOnlyList<string> Names, List<double[]> Rows) ReadNdjson(string text, MonitoringSpec spec)
    {
        var lines = text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
        if (lines.Count > MaxRows)
        {
            throw new StatisticsException($"at most {MaxRows} reference rows; this body has {lines.Count}");
        }

        IReadOnlyList<string>? names = null;
        var rows = new List<double[]>(lines.Count);
        for (var i = 0; i < lines.Count; i++)
        {
            try
            {
                using var document = JsonDocument.Parse(lines[i]);
                var root = document.RootElement;
                if (root.ValueKind == JsonValueKind.Array)
                {
                    var row = root.EnumerateArray().Select((v, j) => v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw new StatisticsException($"NDJSON line {i + 1}, element {j}: not a number")).ToArray();
                    names ??= row.Length == spec.FeatureNames.Count ? spec.FeatureNames : [.. Enumerable.Range(0, row.Length).Select(j => $"input[{j}]")];
                    rows.Add(row.Length == names.Count ? row : throw new StatisticsException($"NDJSON line {i + 1}: {row.Length} values where the first line has {names.Count}"));
                }
                else if (root.ValueKind == JsonValueKind.Object)
                {
                    names ??= [.. root.EnumerateObject().Select(p => p.Name)];
                    rows.Add([.. names.Select(n => root.TryGetProperty(n, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble()
                        : throw new StatisticsException($"NDJSON line {i + 1}: '{(n.Length > 64 ? n[..64] : n)}' missing or not a number"))]);
                }
                else
                {
                    throw new StatisticsException($"NDJSON line {i + 1}: expected an array of numbers or an object");
                }
            }
            catch (JsonException e)
            {
                throw new StatisticsException($"NDJSON line {i + 1}: not JSON ({e.Message})");
            }
        }

        return names is null ? throw new StatisticsException("the body holds no rows") : (names, rows);
    }

    /// <summary>
    /// Uploaded input rows scored through the model (one FP32 input of the rows' width, in batches),
    /// so the reference covers its outputs too; rows the model cannot take stay inputs only.
    /// </summary>
    private static async Task<(IReadOnlyList<string> Names, List<double[]> Rows)> WithOutputsAsync(ModelManager models, string model, string? version,
        (IReadOnlyList<string> Names, List<double[]> Rows) inputs, CancellationToken cancellationToken)
    {
        ModelConfig config;
        try
        {
            config = models.Find(model, version).Config;
        }
        catch (InferenceException)
        {
            return inputs;
        }

        var width = inputs.Names.Count;
        if (config.Inputs.Count != 1 || config.Inputs[0].DataType != Tensors.TensorDataType.Fp32 || config.MaxBatchSize < 1
            || config.Inputs[0].Dims.Aggregate(1L, (a, d) => a * d) != width)
        {
            return inputs;
        }

        List<string>? names = null;
        var rows = new List<double[]>(inputs.Rows.Count);
        foreach (var chunk in inputs.Rows.Chunk(config.MaxBatchSize))
        {
            var data = new byte[chunk.Length * width * 4];
            for (var r = 0; r < chunk.Length; r++)
            {
                for (var j = 0; j < width; j++)
                {
                    System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(((r * width) + j) * 4), (float)chunk[r][j]);
                }
            }

            using var request = new InferenceRequest();
            request.Inputs.Add(new InputTensor(config.Inputs[0].Name, Tensors.TensorDataType.Fp32, [chunk.Length, .. config.Inputs[0].Dims], data));
            using var result = await models.InferAsync(model, version, request, cancellationToken).ConfigureAwait(false);
            var outputs = result.Outputs.Where(o => o.DataType is Tensors.TensorDataType.Fp32 or Tensors.TensorDataType.Fp64).ToList();
            names ??= [.. inputs.Names, .. outputs.SelectMany(o => Enumerable.Range(0, (int)(o.Shape.Aggregate(1L, (a, d) => a * d) / chunk.Length)).Select(i => $"{o.Name}[{i}]"))];
            for (var r = 0; r < chunk.Length; r++)
            {
                // The inputs as the model saw them (FP32), so they compare with logged FP32 traffic value for value.
                var row = new List<double>(names.Count);
                row.AddRange(chunk[r].Select(v => (double)(float)v));
                foreach (var output in outputs)
                {
                    var size = output.DataType == Tensors.TensorDataType.Fp32 ? 4 : 8;
                    var perRow = output.Data.Length / size / chunk.Length;
                    for (var i = 0; i < perRow; i++)
                    {
                        row.Add(PredictionPayload.Element(output.DataType, output.Data.Span.Slice(((r * perRow) + i) * size, size)));
                    }
                }

                rows.Add([.. row]);
            }
        }

        return (names ?? [.. inputs.Names], rows);
    }
}
