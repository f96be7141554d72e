using System.Text.Json;
using MedServe.Stats.Drift;

namespace MedServe.Drift;

/// <summary>The drift report's JSON: the reference, the window, each feature's test, the correction, the dataset verdict and the multivariate test.</summary>
public static class DriftReportJson
{
    public static void Write(Utf8JsonWriter w, string model, string? version, StoredReference stored, DriftReference reference, int windowRows, DriftReport? report)
    {
        w.WriteStartObject();
        w.WriteString("model", model);
        if (version is not null)
        {
            w.WriteString("version", version);
        }

        w.WriteStartObject("reference");
        w.WriteNumber("revision", stored.Revision);
        w.WriteString("version", stored.Version);
        w.WriteString("source", stored.Source);
        w.WriteString("created_at", stored.CreatedAt);
        w.WriteNumber("rows", reference.RowCount);
        w.WriteEndObject();
        w.WriteNumber("window_rows", windowRows);
        if (report is null)
        {
            w.WriteString("insufficient", $"drift needs at least {DriftApi.MinimumWindowRows} logged rows with their inputs in the window; it has {windowRows}");
            w.WriteEndObject();
            return;
        }

        w.WriteStartArray("features");
        foreach (var f in report.Features)
        {
            w.WriteStartObject();
            w.WriteString("name", f.Name);
            w.WriteNumber("index", f.Index);
            w.WriteString("kind", f.Kind.ToString().ToLowerInvariant());
            w.WriteString("test", f.Test);
            w.WriteNumber("statistic", f.Statistic);
            if (f.PValue is { } p)
            {
                w.WriteNumber("p_value", p);
                w.WriteNumber("adjusted_p_value", f.AdjustedPValue!.Value);
            }

            w.WriteNumber("threshold", f.Threshold);
            w.WriteBoolean("drifted", f.Drifted);
            if (f.Psi is { } psi)
            {
                w.WriteNumber("psi", psi);
            }

            w.WriteEndObject();
        }

        w.WriteEndArray();
        w.WriteString("correction", report.Correction);
        w.WriteNumber("alpha", report.Alpha);
        w.WriteNumber("feature_alpha", report.FeatureAlpha);
        w.WriteNumber("drifted_features", report.DriftedFeatures);
        w.WriteNumber("drifted_share", report.DriftedShare);
        w.WriteNumber("drift_share", report.DriftShare);
        w.WriteBoolean("dataset_drift", report.DatasetDrift);
        if (report.Multivariate is { } m)
        {
            w.WriteStartObject("multivariate");
            w.WriteString("test", "mmd_rbf_permutation");
            w.WriteNumber("mmd2", m.Mmd2);
            w.WriteNumber("p_value", m.PValue);
            w.WriteNumber("alpha", report.Alpha / 2);
            w.WriteNumber("bandwidth", m.Bandwidth);
            w.WriteNumber("reference_rows", m.ReferenceRows);
            w.WriteNumber("current_rows", m.CurrentRows);
            w.WriteNumber("permutations", m.Permutations);
            w.WriteBoolean("drifted", report.MultivariateDrift);
            w.WriteEndObject();
        }

        w.WriteBoolean("drift_detected", report.DriftDetected);
        w.WriteEndObject();
    }
}
