using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using MedServe.Registry.Store;

namespace MedServe.Http.Registry;

/// <summary>
/// MLflow's search filters and page tokens, as its SQL store reads them (SearchUtils,
/// SearchModelVersionUtils): clauses joined by AND; <c>name</c>, <c>run_id</c>, <c>source_path</c>
/// with = != LIKE ILIKE (run_id also IN ('a','b')); <c>version_number</c> with = != &lt; &lt;= &gt; &gt;=;
/// tags as <c>tags.key</c>, <c>tag.key</c> or <c>tags.`dotted.key`</c>. Page tokens are base64 of
/// {"offset": N}. Anything else is INVALID_PARAMETER_VALUE, naming the clause.
/// </summary>
internal static partial class MlflowSearch
{
    /// <summary>One candidate's searchable fields: name, run id, source, version number (0 for a model), tags.</summary>
    public sealed record Candidate(string Name, string RunId, string Source, long Version, IReadOnlyDictionary<string, string> Tags);

    private sealed record Clause(string Key, bool IsTag, string Op, IReadOnlyList<string> Values);

    public static Func<Candidate, bool> Parse(string? filter, bool versions)
    {
        var clauses = new List<Clause>();
        if (!string.IsNullOrWhiteSpace(filter))
        {
            foreach (var text in AndSplitter().Split(filter.Trim()))
            {
                clauses.Add(ParseClause(text.Trim(), versions));
            }
        }

        return candidate => clauses.TrueForAll(c => Matches(c, candidate));
    }

    /// <summary>The offset a page token carries; 0 for none.</summary>
    public static int Offset(string? token)
    {
        if (string.IsNullOrEmpty(token))
        {
            return 0;
        }

        try
        {
            using var json = JsonDocument.Parse(Convert.FromBase64String(token));
            if (json.RootElement.TryGetProperty("offset", out var offset) && offset.TryGetInt32(out var value) && value > 0)
            {
                return value;
            }
        }
        catch (Exception e) when (e is FormatException or JsonException)
        {
        }

        throw new RegistryException(RegistryError.Invalid, "Invalid page token, could not base64-decode");
    }

    public static string Token(int offset) => Convert.ToBase64String(Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{{\"offset\": {offset}}}")));

    /// <summary>max_results: absent is the default; outside 1..max is refused as MLflow refuses it.</summary>
    public static int MaxResults(string? text, int fallback, int max)
    {
        if (string.IsNullOrEmpty(text))
        {
            return fallback;
        }

        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value is >= 1 && value <= max
            ? value
            : throw new RegistryException(RegistryError.Invalid, $"Invalid value for request parameter max_results. It must be at most {max}, but got value {text}");
    }

    private static Clause ParseClause(string text, bool versions)
    {
        var match = ClausePattern().Match(text);
        if (!match.Success)
        {
            throw Invalid(text);
        }

        var key = match.Groups["key"].Value;
        var op = Regex.Replace(match.Groups["op"].Value.Trim().ToUpperInvariant(), @"\s+", " ");
        var isTag = key.StartsWith("tags.", StringComparison.OrdinalIgnoreCase) || key.StartsWith("tag.", StringComparison.OrdinalIgnoreCase);
        if (isTag)
        {
            key = key[(key.IndexOf('.', StringComparison.Ordinal) + 1)..].Trim('`');
            if (op is not ("=" or "!=" or "LIKE" or "ILIKE"))
            {
                throw Invalid(text);
            }
        }
        else
        {
            key = key.Trim('`').ToLowerInvariant();
            var allowed = key switch
            {
                "name" => op is "=" or "!=" or "LIKE" or "ILIKE",
                "run_id" when versions => op is "=" or "!=" or "LIKE" or "ILIKE" or "IN",
                "source_path" when versions => op is "=" or "!=" or "LIKE" or "ILIKE",
                "version_number" when versions => op is "=" or "!=" or "<" or "<=" or ">" or ">=",
                _ => false,
            };
            if (!allowed)
            {
                throw Invalid(text);
            }
        }

        var raw = match.Groups["value"].Value.Trim();
        List<string> values;
        if (op == "IN")
        {
            var list = InList().Match(raw);
            if (!list.Success)
            {
                throw Invalid(text);
            }

            values = [.. QuotedValue().Matches(list.Groups[1].Value).Select(Unquote)];
        }
        else if (key == "version_number" && !isTag)
        {
            values = long.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out _) ? [raw] : throw Invalid(text);
        }
        else
        {
            var quoted = QuotedValue().Match(raw);
            values = quoted.Success && quoted.Length == raw.Length ? [Unquote(quoted)] : throw Invalid(text);
        }

        return new Clause(key, isTag, op, values);
    }

    private static string Unquote(Match m) => m.Groups[1].Success ? m.Groups[1].Value.Replace("''", "'", StringComparison.Ordinal) : m.Groups[2].Value;

    private static bool Matches(Clause clause, Candidate candidate)
    {
        if (clause.Key == "version_number" && !clause.IsTag)
        {
            var wanted = long.Parse(clause.Values[0], CultureInfo.InvariantCulture);
            return clause.Op switch
            {
                "=" => candidate.Version == wanted,
                "!=" => candidate.Version != wanted,
                "<" => candidate.Version < wanted,
                "<=" => candidate.Version <= wanted,
                ">" => candidate.Version > wanted,
                _ => candidate.Version >= wanted,
            };
        }

        string? actual = clause.IsTag
            ? candidate.Tags.TryGetValue(clause.Key, out var tag) ? tag : null
            : clause.Key switch
            {
                "name" => candidate.Name,
                "run_id" => candidate.RunId,
                _ => candidate.Source,
            };

        // A missing tag matches only "!=" (MLflow's client adds tag.`mlflow.prompt.is_prompt` != 'true').
        if (actual is null)
        {
            return clause.Op == "!=";
        }

        return clause.Op switch
        {
            "=" => actual == clause.Values[0],
            "!=" => actual != clause.Values[0],
            "LIKE" => Like(actual, clause.Values[0], RegexOptions.None),
            "ILIKE" => Like(actual, clause.Values[0], RegexOptions.IgnoreCase),
            _ => clause.Values.Contains(actual),
        };
    }

    private static bool Like(string value, string pattern, RegexOptions options) =>
        Regex.IsMatch(value, "^" + Regex.Escape(pattern).Replace("%", ".*", StringComparison.Ordinal).Replace("_", ".", StringComparison.Ordinal) + "$",
            options | RegexOptions.Singleline, TimeSpan.FromSeconds(1));

    private static RegistryException Invalid(string clause) =>
        new(RegistryError.Invalid, $"Invalid filter '{(clause.Length > 100 ? clause[..100] + "..." : clause)}': supported are name, tags.<key>, and for versions run_id, source_path and version_number, compared with = != LIKE ILIKE (run_id also IN, version_number < <= > >=), joined by AND");

    [GeneratedRegex(@"\s+AND\s+", RegexOptions.IgnoreCase)]
    private static partial Regex AndSplitter();

    [GeneratedRegex(@"^(?<key>(?:tags?\.)?(?:`[^`]+`|[\w.]+))\s*(?<op>!=|<=|>=|=|<|>|\s(?:NOT\s+)?I?LIKE\s|\sIN\s)\s*(?<value>.+)$", RegexOptions.IgnoreCase | RegexOptions.Singleline)]
    private static partial Regex ClausePattern();

    [GeneratedRegex(@"^\((.*)\)$", RegexOptions.Singleline)]
    private static partial Regex InList();

    [GeneratedRegex(@"'((?:[^']|'')*)'|""((?:[^""])*)""")]
    private static partial Regex QuotedValue();
}
