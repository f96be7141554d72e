using System.Globalization;

namespace MedServe.Inference;

/// <summary>A protocol parameter value: string, integer, floating point or boolean.</summary>
public readonly record struct InferenceParameter
{
    private InferenceParameter(ParameterKind kind, string? text, long integer, double real, bool flag)
    {
        Kind = kind;
        Text = text;
        Integer = integer;
        Real = real;
        Flag = flag;
    }

    public ParameterKind Kind { get; }

    public string? Text { get; }

    public long Integer { get; }

    public double Real { get; }

    public bool Flag { get; }

    public static InferenceParameter Of(string value) => new(ParameterKind.String, value, 0, 0, false);

    public static InferenceParameter Of(long value) => new(ParameterKind.Integer, null, value, 0, false);

    public static InferenceParameter Of(double value) => new(ParameterKind.Double, null, 0, value, false);

    public static InferenceParameter Of(bool value) => new(ParameterKind.Bool, null, 0, 0, value);

    /// <summary>Reads the value as a boolean: a JSON boolean, or the strings "true"/"false".</summary>
    public bool TryGetBool(out bool value)
    {
        switch (Kind)
        {
            case ParameterKind.Bool:
                value = Flag;
                return true;
            case ParameterKind.String when bool.TryParse(Text, out value):
                return true;
            default:
                value = false;
                return false;
        }
    }

    /// <summary>Reads the value as an integer: a JSON integer, or a string holding one.</summary>
    public bool TryGetInt64(out long value)
    {
        switch (Kind)
        {
            case ParameterKind.Integer:
                value = Integer;
                return true;
            case ParameterKind.String when long.TryParse(Text, NumberStyles.Integer, CultureInfo.InvariantCulture, out value):
                return true;
            default:
                value = 0;
                return false;
        }
    }

    public override string ToString() => Kind switch
    {
        ParameterKind.String => Text ?? string.Empty,
        ParameterKind.Integer => Integer.ToString(CultureInfo.InvariantCulture),
        ParameterKind.Double => Real.ToString("R", CultureInfo.InvariantCulture),
        _ => Flag ? "true" : "false",
    };
}

public enum ParameterKind : byte
{
    String,
    Integer,
    Double,
    Bool,
}
