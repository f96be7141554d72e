using System.Security.Claims;
using MedServe.Security;

namespace MedServe.Tests.Security;

public sealed class ScopesTests
{
    [Theory]
    [InlineData("infer", "infer", null, true)]
    [InlineData("infer", "infer", "risk", true)]
    [InlineData("infer:risk", "infer", "risk", true)]
    [InlineData("infer:risk", "infer", "risky", false)]
    [InlineData("infer:risk", "infer", "ris", false)]
    [InlineData("infer:risk", "infer", null, true)] // the route has no model (gRPC): the model is checked later
    [InlineData("infer:risk", "models:read", null, false)]
    [InlineData("models:read", "models:write", null, false)]
    [InlineData("models:write", "models:read", null, false)]
    [InlineData("admin", "audit:read", null, true)]
    [InlineData("admin", "infer", "anything", true)]
    [InlineData("audit:read", "admin", null, false)]
    public void A_scope_grants_itself_admin_grants_all_and_a_model_scope_one_model(string held, string needed, string? model, bool granted)
    {
        var user = new ClaimsPrincipal(new ClaimsIdentity([new Claim(Scopes.ClaimType, held)], "test"));
        Assert.Equal(granted, Scopes.Grants(user, needed, model));
    }

    [Fact]
    public void Nobody_without_scope_claims_is_granted_anything()
    {
        var user = new ClaimsPrincipal(new ClaimsIdentity([new Claim("scope", "admin")], "test"));
        Assert.All(Scopes.All, s => Assert.False(Scopes.Grants(user, s)));
    }

    [Theory]
    [InlineData("infer", true)]
    [InlineData("infer:sepsis", true)]
    [InlineData("infer:id-fp32", true)]
    [InlineData("infer:breast_cancer.v2", true)]
    [InlineData("admin", true)]
    [InlineData("audit:read", true)]
    [InlineData("infer:", false)]
    [InlineData("Admin", false)]
    [InlineData("models:delete", false)]
    [InlineData("authenticated", false)]
    [InlineData("", false)]
    [InlineData("admin ", false)]
    [InlineData(" admin", false)]
    [InlineData("infer:risk admin", false)] // one scope hiding a second
    [InlineData("infer:risk\tadmin", false)]
    [InlineData("infer:risk\nadmin", false)]
    [InlineData("infer:risk\r\nadmin", false)]
    [InlineData("infer:risk\0", false)]
    [InlineData("admin\0", false)]
    [InlineData("infer:risk,admin", false)]
    [InlineData("infer:../x", false)]
    [InlineData("infer:..", false)]
    [InlineData("infer:.hidden", false)]
    [InlineData("infer:-flag", false)]
    [InlineData("infer:a/b", false)]
    [InlineData("infer:a\\b", false)]
    [InlineData("infer:infer:risk", false)]
    [InlineData("infer:rísk", false)] // non-ASCII: look-alikes
    [InlineData("infer:risk\u200b", false)] // zero-width space
    [InlineData("infer:ｒｉｓｋ", false)] // full-width letters
    [InlineData("ａdmin", false)]
    public void Only_known_scopes_and_infer_with_a_model_name_are_valid(string scope, bool valid) => Assert.Equal(valid, Scopes.IsValid(scope));

    [Fact]
    public void A_model_name_has_a_length_limit_and_null_is_no_scope()
    {
        Assert.True(Scopes.IsValid("infer:" + new string('m', 128)));
        Assert.False(Scopes.IsValid("infer:" + new string('m', 129)));
        Assert.False(Scopes.IsValid("infer:" + new string('m', 100_000)));
        Assert.False(Scopes.IsValid(null));
    }

    [Fact]
    public void A_refusal_names_the_scope_shortened_and_escaped()
    {
        var refusal = Scopes.Refusal("infer:risk\nadmin\0" + new string('x', 10_000));
        Assert.StartsWith("unknown scope 'infer:risk\\u000aadmin\\u0000xxx", refusal);
        Assert.Contains("...(10017 characters)'", refusal);
        Assert.DoesNotContain('\n', refusal);
        Assert.DoesNotContain('\0', refusal);
        Assert.True(refusal.Length < 400, refusal);
    }

    [Fact]
    public void A_held_scope_outside_the_grammar_grants_nothing()
    {
        var user = new ClaimsPrincipal(new ClaimsIdentity([new Claim(Scopes.ClaimType, "infer:risk admin"), new Claim(Scopes.ClaimType, "infer:../x")], "test"));
        Assert.False(Scopes.Grants(user, Scopes.Infer, "risk admin"));
        Assert.False(Scopes.Grants(user, Scopes.Infer, "../x"));
        Assert.False(Scopes.Grants(user, Scopes.Infer));
        Assert.False(Scopes.Grants(user, Scopes.Admin));
    }

    [Fact]
    public void Inference_changes_audit_reads_and_key_management_are_audited_and_plain_reads_are_not()
    {
        Assert.Equal(["infer", "models:write", "audit:read", "predictions:read", "outcomes:write", "admin"], Scopes.All.Where(Scopes.IsAudited));
        Assert.False(Scopes.IsAudited(Scopes.AnyCredential));
    }
}
