using System.Text;
using System.Text.Json;
using MedServe.Compliance.Encryption;

namespace MedServe.Outcomes;

/// <summary>
/// An outcome's content, encrypted in its journal record and in the store (it is patient data):
/// the prediction it belongs to, the label (0/1) or value, when it was observed, and whether it
/// replaced a different earlier one. Bound to the prediction's request id.
/// </summary>
public sealed record OutcomeRecord(long PredictionSequence, double? Label, double? Value, DateTimeOffset? ObservedAt, bool Conflict)
{
    public double Observed => Label ?? Value ?? double.NaN;

    public byte[] Seal(EnvelopeEncryption envelopes, string predictionRequestId) =>
        envelopes.Encrypt(JsonSerializer.SerializeToUtf8Bytes(new Wire(PredictionSequence, Label, Value, ObservedAt, Conflict)), Encoding.UTF8.GetBytes(predictionRequestId));

    public static OutcomeRecord Read(EnvelopeEncryption envelopes, byte[] envelope, string predictionRequestId)
    {
        var wire = JsonSerializer.Deserialize<Wire>(envelopes.Decrypt(envelope, Encoding.UTF8.GetBytes(predictionRequestId)))!;
        return new OutcomeRecord(wire.P, wire.L, wire.V, wire.O, wire.C);
    }

    private sealed record Wire(long P, double? L, double? V, DateTimeOffset? O, bool C);
}
