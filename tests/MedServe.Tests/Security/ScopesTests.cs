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
    [InlineData("infer:", false)]
    [InlineData("Admin", false)]
    [InlineData("models:delete", false)]
    [InlineData("authenticated", false)]
    public void Only_known_scopes_are_valid(string scope, bool valid) => Assert.Equal(valid, Scopes.IsValid(scope));

    [Fact]
    public void Inference_changes_audit_reads_and_key_management_are_audited_and_plain_reads_are_not()
    {
        Assert.Equal(["infer", "models:write", "audit:read", "admin"], Scopes.All.Where(Scopes.IsAudited));
        Assert.False(Scopes.IsAudited(Scopes.AnyCredential));
    }
}
