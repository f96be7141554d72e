namespace MedServe.Tensors;

/// <summary>The Open Inference Protocol's tensor datatypes (BF16 travels only in binary form).</summary>
public enum TensorDataType : byte
{
    Invalid = 0,
    Bool,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Int8,
    Int16,
    Int32,
    Int64,
    Fp16,
    Fp32,
    Fp64,
    Bytes,
    Bf16,
}

public static class TensorDataTypes
{
    private static readonly string[] WireNames =
        ["INVALID", "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
         "FP16", "FP32", "FP64", "BYTES", "BF16"];

    // Triton's model_config.proto DataType names (TYPE_STRING is BYTES on the wire).
    private static readonly string[] ConfigNames =
        ["TYPE_INVALID", "TYPE_BOOL", "TYPE_UINT8", "TYPE_UINT16", "TYPE_UINT32", "TYPE_UINT64", "TYPE_INT8",
         "TYPE_INT16", "TYPE_INT32", "TYPE_INT64", "TYPE_FP16", "TYPE_FP32", "TYPE_FP64", "TYPE_STRING", "TYPE_BF16"];

    public static string ToWireName(this TensorDataType type) => WireNames[(int)type];

    public static string ToConfigName(this TensorDataType type) => ConfigNames[(int)type];

    /// <summary>Parses a wire name such as "FP32"; false for anything else (names are case-sensitive, as in Triton).</summary>
    public static bool TryParseWireName(string? name, out TensorDataType type) => TryFind(WireNames, name, out type);

    public static bool TryParseWireName(ReadOnlySpan<byte> utf8Name, out TensorDataType type)
    {
        for (var i = 1; i < WireNames.Length; i++)
        {
            if (System.Text.Ascii.Equals(utf8Name, WireNames[i]))
            {
                type = (TensorDataType)i;
                return true;
            }
        }

        type = TensorDataType.Invalid;
        return false;
    }

    /// <summary>Parses a config name such as "TYPE_FP32" (also accepts the bare wire name).</summary>
    public static bool TryParseConfigName(string? name, out TensorDataType type) =>
        TryFind(ConfigNames, name, out type) || TryFind(WireNames, name, out type);

    /// <summary>Bytes per element; 0 for BYTES, whose elements vary in length.</summary>
    public static int ElementSize(this TensorDataType type) => type switch
    {
        TensorDataType.Bool or TensorDataType.UInt8 or TensorDataType.Int8 => 1,
        TensorDataType.UInt16 or TensorDataType.Int16 or TensorDataType.Fp16 or TensorDataType.Bf16 => 2,
        TensorDataType.UInt32 or TensorDataType.Int32 or TensorDataType.Fp32 => 4,
        TensorDataType.UInt64 or TensorDataType.Int64 or TensorDataType.Fp64 => 8,
        _ => 0,
    };

    private static bool TryFind(string[] names, string? name, out TensorDataType type)
    {
        if (name is not null)
        {
            var index = Array.IndexOf(names, name);
            if (index > 0)
            {
                type = (TensorDataType)index;
                return true;
            }
        }

        type = TensorDataType.Invalid;
        return false;
    }
}
