using System.Text;

namespace MedServe.Repository;

/// <summary>
/// The one model-name grammar: the repository's folder names, the names requests and routes may
/// use, and the model an <c>infer:&lt;model&gt;</c> scope names. ASCII letters, digits, '_', '-'
/// and '.', at most <see cref="MaxLength"/>, not starting with '.' or '-': a name can be neither a
/// path (no '/', '\', '..') nor hide a separator (no space, ':', control or look-alike character).
/// </summary>
public static class ModelNames
{
    public const int MaxLength = 128;

    public const string Grammar = "ASCII letters, digits, '_', '-' and '.', at most 128, not starting with '.' or '-'";

    public static bool IsValid(ReadOnlySpan<char> name)
    {
        if (name.Length is 0 or > MaxLength || name[0] is '.' or '-')
        {
            return false;
        }

        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Untrusted text for an error message: at most <paramref name="max"/> characters, anything but
    /// printable ASCII as \uXXXX, so a message cannot be flooded or carry a line break or NUL.
    /// </summary>
    public static string Quote(ReadOnlySpan<char> text, int max = 40)
    {
        var builder = new StringBuilder(Math.Min(text.Length, max) + 8);
        foreach (var c in text[..Math.Min(text.Length, max)])
        {
            if (c is >= ' ' and <= '~' && c != '\\')
            {
                builder.Append(c);
            }
            else
            {
                builder.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\u{(int)c:x4}");
            }
        }

        if (text.Length > max)
        {
            builder.Append(System.Globalization.CultureInfo.InvariantCulture, $"...({text.Length} characters)");
        }

        return builder.ToString();
    }
}
