using System.Text.RegularExpressions;

namespace MedServe.Logging;

/// <summary>
/// The redaction policy, applied to every log sink: whatever provider is configured receives
/// only what passes here.
/// <list type="bullet">
/// <item>Framework categories whose debug and information events quote request lines, headers or
/// bodies are held to warnings and above.</item>
/// <item>Query strings are cut from any URL in a message (a query may carry an identifier).</item>
/// <item>Scopes lose their request path (a path segment may be anything a client typed); the
/// request id stays, so entries of one request still line up.</item>
/// <item>An exception keeps its type and stack but not its message: .NET messages quote the
/// offending input ("The input string '...' was not in a correct format").</item>
/// </list>
/// MedServe's own log messages name models, versions, routes and counts, never inputs, outputs,
/// identifiers or free text; the canary test holds them to that.
/// </summary>
public static partial class LogRedaction
{
    private static readonly string[] EchoingCategories =
    [
        "Microsoft.AspNetCore.Hosting.Diagnostics",
        "Microsoft.AspNetCore.Server.Kestrel",
        "Microsoft.AspNetCore.HttpLogging",
        "Microsoft.AspNetCore.W3CLogging",
        "Microsoft.AspNetCore.Routing",
        "Microsoft.AspNetCore.Http",
        "Grpc.AspNetCore.Server",
    ];

    /// <summary>Wraps every registered log provider; call after all providers are added.</summary>
    public static void Apply(IServiceCollection services)
    {
        services.AddMedServeRedaction();
        for (var i = 0; i < services.Count; i++)
        {
            var descriptor = services[i];
            if (descriptor.ServiceType != typeof(ILoggerProvider) || descriptor.IsKeyedService)
            {
                continue;
            }

            services[i] = ServiceDescriptor.Singleton<ILoggerProvider>(sp => new RedactingLoggerProvider(Create(sp, descriptor), sp.GetService<Microsoft.Extensions.Compliance.Redaction.IRedactorProvider>()));
        }
    }

    public static string Redact(string message) => QueryString().Replace(message, "?[redacted]");

    internal static bool IsEchoing(string category) =>
        EchoingCategories.Any(prefix => category.StartsWith(prefix, StringComparison.Ordinal));

    private static ILoggerProvider Create(IServiceProvider services, ServiceDescriptor descriptor) =>
        (ILoggerProvider)(descriptor.ImplementationInstance
            ?? descriptor.ImplementationFactory?.Invoke(services)
            ?? ActivatorUtilities.CreateInstance(services, descriptor.ImplementationType!));

    [GeneratedRegex(@"\?[^\s""']*")]
    private static partial Regex QueryString();
}

/// <summary>
/// Applies <see cref="LogRedaction"/> in front of one real provider. A structured event reaches
/// the sink structured: its properties (and <c>{OriginalFormat}</c>) as a list of pairs, each
/// value redacted by its data classification (<see cref="LogClassification"/>) or, unclassified,
/// with query strings cut; the message is rebuilt from the redacted values.
/// </summary>
internal sealed class RedactingLoggerProvider(ILoggerProvider inner, Microsoft.Extensions.Compliance.Redaction.IRedactorProvider? redactors = null) : ILoggerProvider, ISupportExternalScope
{
    public ILogger CreateLogger(string categoryName) =>
        new RedactingLogger(inner.CreateLogger(categoryName), LogRedaction.IsEchoing(categoryName), redactors);

    public void SetScopeProvider(IExternalScopeProvider scopeProvider)
    {
        if (inner is ISupportExternalScope scoped)
        {
            scoped.SetScopeProvider(new RedactingScopeProvider(scopeProvider));
        }
    }

    public void Dispose() => inner.Dispose();

    private sealed class RedactingLogger(ILogger inner, bool echoing, Microsoft.Extensions.Compliance.Redaction.IRedactorProvider? redactors) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => (!echoing || logLevel >= LogLevel.Warning) && inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }

            var redactedException = exception is null ? null : new RedactedException(exception);
            if (state is IReadOnlyList<KeyValuePair<string, object?>> pairs)
            {
                var properties = new List<KeyValuePair<string, object?>>(pairs.Count);
                var classified = false;
                foreach (var (key, value) in pairs)
                {
                    var classification = LogClassification.Of(key);
                    if (classification != Microsoft.Extensions.Compliance.Classification.DataClassification.None && key != "{OriginalFormat}")
                    {
                        classified = true;
                        var redactor = redactors?.GetRedactor(new Microsoft.Extensions.Compliance.Classification.DataClassificationSet(classification));
                        properties.Add(new(key, redactor?.Redact(value?.ToString() ?? "") ?? ""));
                    }
                    else
                    {
                        // The template too: a literal message may hold a URL with its query.
                        properties.Add(new(key, value is string text ? LogRedaction.Redact(text) : value));
                    }
                }

                var message = classified ? StructuredState.Format(properties) : LogRedaction.Redact(formatter(state, exception));
                inner.Log(logLevel, eventId, new StructuredState(properties, message), redactedException, static (s, _) => s.Message);
                return;
            }

            inner.Log(logLevel, eventId, LogRedaction.Redact(formatter(state, exception)), redactedException, static (text, _) => text);
        }
    }

    /// <summary>A redacted event's properties, for structured sinks, and its message, for text ones.</summary>
    private sealed class StructuredState(List<KeyValuePair<string, object?>> properties, string message) : IReadOnlyList<KeyValuePair<string, object?>>
    {
        public string Message { get; } = message;

        public int Count => properties.Count;

        public KeyValuePair<string, object?> this[int index] => properties[index];

        public IEnumerator<KeyValuePair<string, object?>> GetEnumerator() => properties.GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

        public override string ToString() => Message;

        /// <summary>The template with each {Name} (or {Name:format}) replaced by its redacted value.</summary>
        public static string Format(List<KeyValuePair<string, object?>> properties)
        {
            var template = properties.FirstOrDefault(p => p.Key == "{OriginalFormat}").Value as string ?? string.Join(' ', properties.Select(p => $"{p.Key}={p.Value}"));
            var values = properties.Where(p => p.Key != "{OriginalFormat}").ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
            return LogRedaction.Redact(System.Text.RegularExpressions.Regex.Replace(template, @"\{([A-Za-z0-9_@]+)(:[^}]*)?\}",
                m => values.TryGetValue(m.Groups[1].Value.TrimStart('@'), out var v) ? Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture) ?? "" : m.Value));
        }
    }

    /// <summary>Sinks see each scope redacted: key/value scopes without paths and queries, text scopes without query strings.</summary>
    private sealed class RedactingScopeProvider(IExternalScopeProvider inner) : IExternalScopeProvider
    {
        public void ForEachScope<TState>(Action<object?, TState> callback, TState state) =>
            inner.ForEachScope((scope, s) => callback(Redact(scope), s), state);

        public IDisposable Push(object? state) => inner.Push(state);

        private static object? Redact(object? scope) => scope switch
        {
            null => null,
            IEnumerable<KeyValuePair<string, object?>> pairs => new RedactedScope(pairs
                .Where(p => !p.Key.Contains("Path", StringComparison.OrdinalIgnoreCase) && !p.Key.Contains("Query", StringComparison.OrdinalIgnoreCase))
                .Select(p => new KeyValuePair<string, object?>(p.Key, p.Value is string text ? LogRedaction.Redact(text) : p.Value))
                .ToList()),
            _ => LogRedaction.Redact(scope.ToString() ?? ""),
        };
    }

    private sealed class RedactedScope(List<KeyValuePair<string, object?>> pairs) : IReadOnlyList<KeyValuePair<string, object?>>
    {
        public int Count => pairs.Count;

        public KeyValuePair<string, object?> this[int index] => pairs[index];

        public IEnumerator<KeyValuePair<string, object?>> GetEnumerator() => pairs.GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

        public override string ToString() => string.Join(' ', pairs.Select(p => $"{p.Key}:{p.Value}"));
    }

    /// <summary>An exception's type and stack, without its message or data.</summary>
    private sealed class RedactedException(Exception original) : Exception($"{original.GetType().FullName} (message redacted)")
    {
        public override string? StackTrace => original.StackTrace;

        public override string ToString() => $"{Message}{Environment.NewLine}{original.StackTrace}";
    }
}
