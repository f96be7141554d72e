using Microsoft.Extensions.Compliance.Classification;
using Microsoft.Extensions.Compliance.Redaction;

namespace MedServe.Logging;

/// <summary>
/// The data classes of log properties, for Microsoft.Extensions.Compliance.Redaction: patient
/// data (an identifier, an input, an output) and secrets (a key, a token) are erased whatever the
/// sink; every other property passes with query strings cut. A property is classified by its
/// name, so a message template that names <c>{PatientId}</c> or <c>{ApiKey}</c> can never leak it.
/// </summary>
public static class LogClassification
{
    public const string Taxonomy = "MedServe";

    public static readonly DataClassification Patient = new(Taxonomy, "Patient");

    public static readonly DataClassification Secret = new(Taxonomy, "Secret");

    private static readonly Dictionary<string, DataClassification> ByName = new(StringComparer.OrdinalIgnoreCase)
    {
        ["PatientId"] = Patient, ["Patient"] = Patient, ["Mrn"] = Patient, ["Input"] = Patient, ["Inputs"] = Patient,
        ["Output"] = Patient, ["Outputs"] = Patient, ["Payload"] = Patient, ["Label"] = Patient, ["Value"] = Patient,
        ["ApiKey"] = Secret, ["Key"] = Secret, ["Token"] = Secret, ["Secret"] = Secret, ["Password"] = Secret, ["Authorization"] = Secret,
    };

    /// <summary>The classification of a property by its name, or none.</summary>
    public static DataClassification Of(string property) => ByName.TryGetValue(property, out var classification) ? classification : DataClassification.None;

    /// <summary>Registers the redactors: both classes erased; the rest untouched (a property with no class is not redacted).</summary>
    public static IServiceCollection AddMedServeRedaction(this IServiceCollection services) =>
        services.AddRedaction(redaction =>
        {
            redaction.SetRedactor<ErasingRedactor>(new DataClassificationSet(Patient), new DataClassificationSet(Secret));
            redaction.SetFallbackRedactor<NullRedactor>();
        });
}
