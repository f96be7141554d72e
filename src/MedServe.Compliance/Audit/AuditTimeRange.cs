using System.Globalization;

namespace MedServe.Compliance.Audit;

/// <summary>An export's window, as the API and the CLI take it: ISO 8601 times, from inclusive, to exclusive, either left open.</summary>
public static class AuditTimeRange
{
    public const string Expected = "must be ISO 8601 times, e.g. 2026-11-27T00:00:00Z";

    /// <summary>Both bounds are read (no short-circuit), so both are set whatever the answer.</summary>
    public static bool TryParse(string? from, string? to, out DateTimeOffset start, out DateTimeOffset end) =>
        TryTime(from, DateTimeOffset.MinValue, out start) & TryTime(to, DateTimeOffset.MaxValue, out end);

    private static bool TryTime(string? text, DateTimeOffset absent, out DateTimeOffset time)
    {
        if (string.IsNullOrEmpty(text))
        {
            time = absent;
            return true;
        }

        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out time);
    }
}
