using MedServe.Inference;
using MedServe.Security;

namespace MedServe.Tests.Security;

public sealed class PatientIdTests
{
    [Fact]
    public void An_integer_is_its_decimal_text_and_a_string_is_itself()
    {
        Assert.Equal("4455667799", AuditDetails.PatientIdOf(InferenceParameter.Of(4455667799L)));
        Assert.Equal("4455667799", AuditDetails.PatientIdOf(InferenceParameter.Of("4455667799")));
        Assert.Equal("-7", AuditDetails.PatientIdOf(InferenceParameter.Of(-7L)));
        Assert.Equal("MRN 00042", AuditDetails.PatientIdOf(InferenceParameter.Of("MRN 00042")));
        Assert.Equal(new string('7', 128), AuditDetails.PatientIdOf(InferenceParameter.Of(new string('7', 128))));
        Assert.Null(AuditDetails.PatientIdFrom(null));
        Assert.Null(AuditDetails.PatientIdFrom(new Dictionary<string, InferenceParameter> { ["other"] = InferenceParameter.Of(true) }));
    }

    [Theory]
    [InlineData("", "is empty")]
    [InlineData(" \t", "is empty")]
    [InlineData("MRN-1 ", "leading or trailing whitespace")]
    [InlineData("MRN\n1", "control characters")]
    [InlineData("MRN\u00001", "control characters")]
    public void A_string_that_cannot_be_an_identifier_is_refused(string value, string message)
    {
        var error = Assert.Throws<InferenceException>(() => AuditDetails.PatientIdOf(InferenceParameter.Of(value)));
        Assert.Equal(InferenceErrorKind.InvalidArgument, error.Kind);
        Assert.Contains(message, error.Message);
        Assert.DoesNotContain("MRN", error.Message);
    }

    [Fact]
    public void Booleans_reals_and_over_long_strings_are_refused()
    {
        Assert.Contains("is a boolean", Assert.Throws<InferenceException>(() => AuditDetails.PatientIdOf(InferenceParameter.Of(true))).Message);
        Assert.Contains("floating-point", Assert.Throws<InferenceException>(() => AuditDetails.PatientIdOf(InferenceParameter.Of(1.0))).Message);
        Assert.Contains("129 characters long", Assert.Throws<InferenceException>(() => AuditDetails.PatientIdOf(InferenceParameter.Of(new string('7', 129)))).Message);
    }
}
