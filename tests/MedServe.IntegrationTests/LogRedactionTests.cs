using MedServe.Logging;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace MedServe.IntegrationTests;

/// <summary>The redaction layer by itself: what a sink behind it receives.</summary>
public sealed class LogRedactionTests
{
    [Theory]
    [InlineData("GET http://127.0.0.1:8000/v1/x?patient_id=MRN-1 responded 200", "GET http://127.0.0.1:8000/v1/x?[redacted] responded 200")]
    [InlineData("path /a/b?x=1&y=2 then /c?z", "path /a/b?[redacted] then /c?[redacted]")]
    [InlineData("no query here", "no query here")]
    public void Query_strings_are_cut(string message, string expected) => Assert.Equal(expected, LogRedaction.Redact(message));

    [Fact]
    public void A_sink_gets_no_exception_message_no_request_path_and_no_chatter_from_echoing_categories()
    {
        var sink = new Sink();
        var services = new ServiceCollection();
        services.AddLogging(logging => logging.SetMinimumLevel(LogLevel.Trace).AddProvider(sink));
        LogRedaction.Apply(services);
        using var provider = services.BuildServiceProvider();
        var factory = provider.GetRequiredService<ILoggerFactory>();

        var ours = factory.CreateLogger("MedServe.Something");
        using (ours.BeginScope(new Dictionary<string, object?> { ["RequestPath"] = "/v2/models/MRN-7/infer", ["RequestId"] = "r-1" }))
        {
            try
            {
                throw new FormatException("The input string 'MRN-7' was not in a correct format.");
            }
            catch (FormatException e)
            {
                ours.LogError(e, "failed for {Model}", "risk");
            }
        }

        factory.CreateLogger("Microsoft.AspNetCore.Hosting.Diagnostics").LogInformation("Request starting POST /v2/models/MRN-7/infer");
        factory.CreateLogger("Microsoft.AspNetCore.Server.Kestrel.BadRequests").LogDebug("Invalid request line: MRN-7");
        factory.CreateLogger("Microsoft.AspNetCore.Server.Kestrel").LogWarning("Heartbeat took longer than expected");

        Assert.Equal(2, sink.Entries.Count);
        var error = sink.Entries[0];
        Assert.Equal("failed for risk", error.Message);
        Assert.Equal("System.FormatException (message redacted)", error.Exception!.Message);
        Assert.Contains(nameof(A_sink_gets_no_exception_message_no_request_path_and_no_chatter_from_echoing_categories), error.Exception.ToString());
        Assert.Equal("RequestId:r-1", Assert.Single(error.Scopes));
        Assert.Equal("Heartbeat took longer than expected", sink.Entries[1].Message);
        Assert.DoesNotContain(sink.Entries, e => (e.Message + e.Exception + string.Join(" ", e.Scopes)).Contains("MRN-7", StringComparison.Ordinal));
    }

    [Fact]
    public void A_structured_sink_keeps_the_properties_with_patient_data_and_secrets_erased_by_classification()
    {
        var sink = new Sink();
        var services = new ServiceCollection();
        services.AddLogging(logging => logging.SetMinimumLevel(LogLevel.Trace).AddProvider(sink));
        LogRedaction.Apply(services);
        using var provider = services.BuildServiceProvider();

        provider.GetRequiredService<ILoggerFactory>().CreateLogger("MedServe.Something")
            .LogWarning("refused {Model} version {Version} for {PatientId} with {ApiKey} from {Url}", "risk", 3, "MRN-9", "sk-live-secret", "http://h/p?patient=MRN-9");

        var entry = Assert.Single(sink.Entries);
        var properties = entry.Properties!.ToDictionary(p => p.Key, p => p.Value);
        Assert.Equal("risk", properties["Model"]);
        Assert.Equal(3, properties["Version"]); // not flattened to text: a structured sink keeps the number
        Assert.Equal("", properties["PatientId"]);
        Assert.Equal("", properties["ApiKey"]);
        Assert.Equal("http://h/p?[redacted]", properties["Url"]);
        Assert.Equal("refused {Model} version {Version} for {PatientId} with {ApiKey} from {Url}", properties["{OriginalFormat}"]);
        Assert.Equal("refused risk version 3 for  with  from http://h/p?[redacted]", entry.Message);
        Assert.DoesNotContain("MRN-9", entry.Message + string.Join(" ", properties.Values));
        Assert.DoesNotContain("sk-live", entry.Message + string.Join(" ", properties.Values));
    }

    private sealed record Entry(string Message, Exception? Exception, List<string> Scopes, IReadOnlyList<KeyValuePair<string, object?>>? Properties = null);

    private sealed class Sink : ILoggerProvider, ISupportExternalScope
    {
        private IExternalScopeProvider? _scopes;

        public List<Entry> Entries { get; } = [];

        public ILogger CreateLogger(string categoryName) => new Logger(this);

        public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

        public void Dispose()
        {
        }

        private sealed class Logger(Sink sink) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => sink._scopes?.Push(state);

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                var scopes = new List<string>();
                sink._scopes?.ForEachScope((scope, list) => list.Add(scope?.ToString() ?? ""), scopes);
                sink.Entries.Add(new Entry(formatter(state, exception), exception, scopes, state as IReadOnlyList<KeyValuePair<string, object?>>));
            }
        }
    }
}
