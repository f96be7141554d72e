using System.Globalization;
using MedServe.Inference;

namespace MedServe.Security;

/// <summary>
/// What a handler knows that the audit record needs and the route does not say: the model version
/// that actually answered and the patient the request names. Lives in the request's features;
/// handlers fill it, the audit middleware reads it when the response starts.
/// </summary>
public sealed class AuditDetails : MedServe.Predictions.IPredictionSink
{
    private readonly MedServe.Predictions.PredictionCapture? _capture;

    public AuditDetails()
    {
    }

    /// <summary>Details that also keep the inference's payload, as <paramref name="capture"/> decides.</summary>
    public AuditDetails(MedServe.Predictions.PredictionCapture capture, long startTimestamp)
    {
        _capture = capture;
        StartTimestamp = startTimestamp;
    }

    /// <summary>When the request arrived (<see cref="TimeProvider.GetTimestamp"/>), for the record's latency.</summary>
    public long StartTimestamp { get; }

    /// <summary>The model and version that answered, once one has.</summary>
    public string? Model { get; private set; }

    public long Version { get; private set; }

    /// <summary>The client's own request id (the v2 <c>id</c>), when it sent one.</summary>
    public string? ClientRequestId { get; private set; }

    /// <summary>The inputs and outputs in clear (<see cref="MedServe.Predictions.PredictionPayload"/>), to be encrypted into the record; null when not kept.</summary>
    public byte[]? Prediction { get; private set; }

    public void Capture(MedServe.Repository.ModelConfig config, InferenceRequest request, InferenceResult result)
    {
        Model = config.Name;
        Version = result.ModelVersion;
        ClientRequestId = request.Id;
        Prediction = _capture?.Payload(config, request, result);
    }

    /// <summary>The parameter (REST and gRPC) and header that name a patient; only a pseudonym of it is kept.</summary>
    public const string PatientParameter = "patient_id";
    public const string PatientHeader = "X-Patient-Id";

    /// <summary>Longer than any record number; a longer value is data, not an identifier.</summary>
    public const int PatientIdMaxLength = 128;

    public string? Resource { get; set; }

    public string? PatientId { get; set; }

    /// <summary>Set once a record is written (by the gRPC interceptor), so the response start does not write a second.</summary>
    public bool Recorded { get; set; }

    /// <summary>The patient the request parameters name, or null when they name none; see <see cref="PatientIdOf"/>.</summary>
    public static string? PatientIdFrom(IReadOnlyDictionary<string, InferenceParameter>? parameters) =>
        parameters is not null && parameters.TryGetValue(PatientParameter, out var value) ? PatientIdOf(value) : null;

    /// <summary>
    /// One text per patient, however it was sent: an integer is its decimal text, so 4455667799 and
    /// "4455667799" get the same pseudonym. Anything that cannot be an identifier is refused, never
    /// dropped (a dropped one is an inference without its patient in the audit trail). The value is
    /// never in the message: it is patient data.
    /// </summary>
    public static string PatientIdOf(InferenceParameter value)
    {
        var problem = value.Kind switch
        {
            ParameterKind.Integer => null,
            ParameterKind.Bool => "a boolean",
            ParameterKind.Double => "a floating-point number (or an integer beyond 64 bits)",
            _ when string.IsNullOrWhiteSpace(value.Text) => "empty",
            _ when value.Text.Length > PatientIdMaxLength => $"{value.Text.Length} characters long",
            _ when value.Text.Any(char.IsControl) => "a string with control characters",
            _ when char.IsWhiteSpace(value.Text[0]) || char.IsWhiteSpace(value.Text[^1]) => "a string with leading or trailing whitespace",
            _ => null,
        };
        if (problem is not null)
        {
            throw InferenceException.Invalid(
                $"parameter '{PatientParameter}' is {problem}; it must be a non-empty string of at most {PatientIdMaxLength} characters or an integer");
        }

        return value.Kind == ParameterKind.Integer ? value.Integer.ToString(CultureInfo.InvariantCulture) : value.Text!;
    }
}
