using System.Text.Json;

namespace MedServe.Repository;

/// <summary>
/// A parsed configuration message, independent of its syntax: protobuf text format
/// (config.pbtxt) and JSON (config.json, a load request's override) both become this tree,
/// so one reader maps either to a <see cref="ModelConfig"/>.
/// </summary>
public sealed class ConfigNode
{
    private readonly List<KeyValuePair<string, ConfigValue>> _fields = [];

    public IReadOnlyList<KeyValuePair<string, ConfigValue>> Fields => _fields;

    public void Add(string name, ConfigValue value) => _fields.Add(new(name, value));

    /// <summary>Every value of a field, flattening repeated forms (<c>f: 1 f: 2</c> and <c>f: [1, 2]</c>).</summary>
    public IEnumerable<ConfigValue> All(string name)
    {
        foreach (var (key, value) in _fields)
        {
            if (key != name)
            {
                continue;
            }

            if (value.List is { } list)
            {
                foreach (var item in list)
                {
                    yield return item;
                }
            }
            else
            {
                yield return value;
            }
        }
    }

    /// <summary>The last value of a field (protobuf's rule for a repeated singular field), or null.</summary>
    public ConfigValue? One(string name)
    {
        ConfigValue? found = null;
        foreach (var value in All(name))
        {
            found = value;
        }

        return found;
    }

    /// <summary>Converts a JSON object (protobuf's JSON mapping) into a node.</summary>
    public static ConfigNode FromJson(JsonElement element, string path = "")
    {
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw new ModelConfigException($"{Where(path)}expected a JSON object");
        }

        var node = new ConfigNode();
        foreach (var property in element.EnumerateObject())
        {
            node.Add(property.Name, FromJsonValue(property.Value, path.Length == 0 ? property.Name : $"{path}.{property.Name}"));
        }

        return node;
    }

    private static ConfigValue FromJsonValue(JsonElement value, string path) => value.ValueKind switch
    {
        JsonValueKind.Object => ConfigValue.Of(FromJson(value, path)),
        JsonValueKind.Array => ConfigValue.Of(value.EnumerateArray().Select((item, i) => FromJsonValue(item, $"{path}[{i}]")).ToList()),
        JsonValueKind.String => ConfigValue.Of(value.GetString()!, quoted: true),
        JsonValueKind.Number => ConfigValue.Of(value.GetRawText(), quoted: false),
        JsonValueKind.True => ConfigValue.Of("true", quoted: false),
        JsonValueKind.False => ConfigValue.Of("false", quoted: false),
        _ => throw new ModelConfigException($"{Where(path)}null is not a valid value"),
    };

    private static string Where(string path) => path.Length == 0 ? "" : path + ": ";
}

/// <summary>A field's value: a scalar (as written), a nested message or a list.</summary>
public sealed class ConfigValue
{
    private ConfigValue(string? scalar, bool quoted, ConfigNode? message, IReadOnlyList<ConfigValue>? list)
    {
        Scalar = scalar;
        Quoted = quoted;
        Message = message;
        List = list;
    }

    public string? Scalar { get; }

    /// <summary>True when the scalar was a quoted string rather than a number, boolean or enum name.</summary>
    public bool Quoted { get; }

    public ConfigNode? Message { get; }

    public IReadOnlyList<ConfigValue>? List { get; }

    public static ConfigValue Of(string scalar, bool quoted) => new(scalar, quoted, null, null);

    public static ConfigValue Of(ConfigNode message) => new(null, false, message, null);

    public static ConfigValue Of(IReadOnlyList<ConfigValue> list) => new(null, false, null, list);

    public override string ToString() => Scalar ?? (Message is not null ? "{...}" : "[...]");
}

/// <summary>A configuration that cannot be read or does not make sense; the message says where.</summary>
public sealed class ModelConfigException(string message) : Exception(message);
