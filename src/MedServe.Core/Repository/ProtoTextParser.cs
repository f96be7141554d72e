using System.Text;

namespace MedServe.Repository;

/// <summary>
/// Parses protobuf text format, the syntax of Triton's config.pbtxt: <c>name: value</c>,
/// <c>name { ... }</c> or <c>name: { ... }</c> (also <c>&lt; &gt;</c>), lists in <c>[ ]</c>,
/// quoted strings (adjacent ones concatenate), bare enums and numbers, <c>#</c> comments,
/// optional <c>,</c> or <c>;</c> between fields.
/// </summary>
public sealed class ProtoTextParser
{
    private readonly string _text;
    private readonly string _source;
    private int _pos;

    private ProtoTextParser(string text, string source)
    {
        _text = text;
        _source = source;
    }

    public static ConfigNode Parse(string text, string source = "config.pbtxt")
    {
        var parser = new ProtoTextParser(text, source);
        var node = parser.ParseFields(endChar: null);
        return node;
    }

    private ConfigNode ParseFields(char? endChar)
    {
        var node = new ConfigNode();
        while (true)
        {
            SkipSpaceAndComments();
            if (_pos >= _text.Length)
            {
                if (endChar is not null)
                {
                    throw Error($"expected '{endChar}' before the end of the file");
                }

                return node;
            }

            if (endChar is not null && _text[_pos] == endChar)
            {
                _pos++;
                return node;
            }

            var name = ReadIdentifier("a field name");
            SkipSpaceAndComments();
            var hasColon = Peek() == ':';
            if (hasColon)
            {
                _pos++;
                SkipSpaceAndComments();
            }

            var c = Peek();
            ConfigValue value;
            if (c is '{' or '<')
            {
                value = ReadMessage();
            }
            else if (c == '[')
            {
                value = ReadList(name);
            }
            else if (!hasColon)
            {
                throw Error($"expected ':' or '{{' after field '{name}'");
            }
            else
            {
                value = ReadScalar(name);
            }

            node.Add(name, value);
            SkipSpaceAndComments();
            if (Peek() is ',' or ';')
            {
                _pos++;
            }
        }
    }

    private ConfigValue ReadMessage()
    {
        var open = _text[_pos++];
        return ConfigValue.Of(ParseFields(open == '{' ? '}' : '>'));
    }

    private ConfigValue ReadList(string name)
    {
        _pos++; // '['
        var items = new List<ConfigValue>();
        SkipSpaceAndComments();
        if (Peek() == ']')
        {
            _pos++;
            return ConfigValue.Of(items);
        }

        while (true)
        {
            SkipSpaceAndComments();
            items.Add(Peek() is '{' or '<' ? ReadMessage() : ReadScalar(name));
            SkipSpaceAndComments();
            var c = Peek();
            _pos++;
            if (c == ']')
            {
                return ConfigValue.Of(items);
            }

            if (c != ',')
            {
                _pos--;
                throw Error($"expected ',' or ']' in the list of '{name}'");
            }
        }
    }

    private ConfigValue ReadScalar(string name)
    {
        var c = Peek();
        if (c is '"' or '\'')
        {
            var builder = new StringBuilder();
            while (Peek() is '"' or '\'')
            {
                ReadQuoted(builder);
                SkipSpaceAndComments();
            }

            return ConfigValue.Of(builder.ToString(), quoted: true);
        }

        var start = _pos;
        while (_pos < _text.Length && (char.IsLetterOrDigit(_text[_pos]) || _text[_pos] is '_' or '-' or '+' or '.'))
        {
            _pos++;
        }

        if (_pos == start)
        {
            throw Error($"expected a value for '{name}'");
        }

        return ConfigValue.Of(_text[start.._pos], quoted: false);
    }

    private void ReadQuoted(StringBuilder builder)
    {
        var quote = _text[_pos++];
        while (true)
        {
            if (_pos >= _text.Length || _text[_pos] == '\n')
            {
                throw Error("a string is not closed");
            }

            var c = _text[_pos++];
            if (c == quote)
            {
                return;
            }

            if (c != '\\')
            {
                builder.Append(c);
                continue;
            }

            if (_pos >= _text.Length)
            {
                throw Error("a string is not closed");
            }

            var escaped = _text[_pos++];
            builder.Append(escaped switch
            {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                _ => escaped,
            });
        }
    }

    private string ReadIdentifier(string what)
    {
        var start = _pos;
        while (_pos < _text.Length && (char.IsLetterOrDigit(_text[_pos]) || _text[_pos] == '_'))
        {
            _pos++;
        }

        if (_pos == start)
        {
            throw Error($"expected {what}, found '{_text[_pos]}'");
        }

        return _text[start.._pos];
    }

    private char Peek() => _pos < _text.Length ? _text[_pos] : '\0';

    private void SkipSpaceAndComments()
    {
        while (_pos < _text.Length)
        {
            var c = _text[_pos];
            if (char.IsWhiteSpace(c))
            {
                _pos++;
            }
            else if (c == '#')
            {
                while (_pos < _text.Length && _text[_pos] != '\n')
                {
                    _pos++;
                }
            }
            else
            {
                return;
            }
        }
    }

    private ModelConfigException Error(string message)
    {
        var line = 1;
        var column = 1;
        for (var i = 0; i < Math.Min(_pos, _text.Length); i++)
        {
            if (_text[i] == '\n')
            {
                line++;
                column = 1;
            }
            else
            {
                column++;
            }
        }

        return new ModelConfigException($"{_source} line {line}, column {column}: {message}");
    }
}
