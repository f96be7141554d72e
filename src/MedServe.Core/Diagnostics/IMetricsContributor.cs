using System.Text;

namespace MedServe.Diagnostics;

/// <summary>A part of GET /metrics written by a component the HTTP frontend does not know (the leader election, the change feed).</summary>
public interface IMetricsContributor
{
    /// <summary>Appends complete Prometheus text-format families (HELP, TYPE, samples); labels carry no request data.</summary>
    void Write(StringBuilder text);
}
