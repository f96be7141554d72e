using System.Net;
using System.Text.Json;
using Grpc.Core;
using MedServe.IntegrationTests.Support;
using MedServe.Security;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Patterns;

namespace MedServe.IntegrationTests;

/// <summary>
/// Walks the routing table and every gRPC method: each answers 401 without a credential, 403 with
/// a credential lacking its scope, and past authorization with it. A route added tomorrow is
/// walked too, so it cannot ship unprotected.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class AccessControlTests(ServerFixture server)
{
    private const string GrpcService = "inference.GRPCInferenceService";
    private static readonly string[] Open = ["/v2/health/live", "/v2/health/ready", $"/{GrpcService}/ServerLive", $"/{GrpcService}/ServerReady"];

    [Fact]
    public async Task Every_rest_route_needs_its_scope()
    {
        var keys = await KeysLackingEachScope("rest");
        using var anonymous = server.CreateClient(null);
        var walked = 0;
        foreach (var (endpoint, method) in RestRoutes())
        {
            var scope = ScopeAuthorization.RequiredScope(endpoint);
            var path = Concrete(endpoint.RoutePattern);
            if (scope is null)
            {
                Assert.Contains(endpoint.RoutePattern.RawText, Open);
                using var open = await anonymous.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));
                Assert.Equal(HttpStatusCode.OK, open.StatusCode);
                continue;
            }

            using (var response = await anonymous.SendAsync(new HttpRequestMessage(new HttpMethod(method), path)))
            {
                Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{method} {path} without a credential: {response.StatusCode}");
                Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
                Assert.Contains("authentication required", (await ServerFixture.JsonAsync(response)).GetProperty("error").GetString());
            }

            if (scope != Scopes.AnyCredential)
            {
                using var lacking = server.CreateClient(keys[scope]);
                using var forbidden = await lacking.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));
                Assert.True(forbidden.StatusCode == HttpStatusCode.Forbidden, $"{method} {path} lacking {scope}: {forbidden.StatusCode}");
                Assert.Equal($"the credential lacks the scope '{scope}'", (await ServerFixture.JsonAsync(forbidden)).GetProperty("error").GetString());
            }

            using var holder = server.CreateClient(keys["holds:" + scope]);
            using var allowed = await holder.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));
            Assert.True(allowed.StatusCode is not (HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden), $"{method} {path} holding {scope}: {allowed.StatusCode}");
            walked++;
        }

        Assert.True(walked >= 55, $"only {walked} protected routes walked");
    }

    [Fact]
    public async Task Every_grpc_method_needs_its_scope()
    {
        var keys = await KeysLackingEachScope("grpc");
        var methods = MedServe.Grpc.Protocol.GRPCInferenceService.Descriptor.Methods;
        Assert.Equal(20, methods.Count);
        var endpoints = Endpoints().Where(e => e.RoutePattern.RawText!.StartsWith($"/{GrpcService}/", StringComparison.Ordinal))
            .ToDictionary(e => e.RoutePattern.RawText!, StringComparer.Ordinal);
        foreach (var method in methods)
        {
            var path = $"/{GrpcService}/{method.Name}";
            var scope = ScopeAuthorization.RequiredScope(endpoints[path]);
            if (scope is null)
            {
                Assert.Contains(path, Open);
                Assert.Equal(StatusCode.OK, await Call(null, method));
                continue;
            }

            Assert.Equal(StatusCode.Unauthenticated, await Call(null, method));
            Assert.Equal(StatusCode.PermissionDenied, await Call(keys[scope], method));
            var allowed = await Call(keys["holds:" + scope], method);
            Assert.True(allowed is not (StatusCode.Unauthenticated or StatusCode.PermissionDenied), $"{method.Name} holding {scope}: {allowed}");
        }
    }

    [Fact]
    public async Task A_key_for_one_model_infers_on_that_model_only_over_rest_and_grpc()
    {
        var key = await server.CreateKeyAsync("only-risk", "infer:risk");
        using var client = server.CreateClient(key);
        const string body = """{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}]}""";
        using (var risk = await client.PostAsync("/v2/models/risk/infer", new StringContent(body)))
        {
            Assert.Equal(HttpStatusCode.OK, risk.StatusCode);
        }

        using (var other = await client.PostAsync("/v2/models/breast-cancer/infer", new StringContent(body)))
        {
            Assert.Equal(HttpStatusCode.Forbidden, other.StatusCode);
        }

        using var channel = server.CreateGrpcChannel(key);
        var grpc = new MedServe.Grpc.Protocol.GRPCInferenceService.GRPCInferenceServiceClient(channel);
        var request = new MedServe.Grpc.Protocol.ModelInferRequest { ModelName = "breast-cancer" };
        var denied = await Assert.ThrowsAsync<RpcException>(() => grpc.ModelInferAsync(request).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        Assert.Contains("model 'breast-cancer'", denied.Status.Detail);
    }

    [Fact]
    public async Task Revoked_expired_and_forged_credentials_are_refused_with_the_reason()
    {
        var key = await server.CreateKeyAsync("short-lived", "models:read");
        using var client = server.CreateClient(key);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v2")).StatusCode);
        using (var revoke = await server.Client.DeleteAsync("/v1/keys/short-lived"))
        {
            Assert.Equal(HttpStatusCode.NoContent, revoke.StatusCode);
        }

        using var afterRevoke = await client.GetAsync("/v2");
        Assert.Equal(HttpStatusCode.Unauthorized, afterRevoke.StatusCode);
        Assert.Equal("the API key is unknown, expired or revoked", (await ServerFixture.JsonAsync(afterRevoke)).GetProperty("error").GetString());

        using var forged = server.CreateClient(key[..^2] + "xx");
        Assert.Equal(HttpStatusCode.Unauthorized, (await forged.GetAsync("/v2")).StatusCode);

        using var basic = server.CreateClient(null);
        basic.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic", "YWRtaW46YWRtaW4=");
        using var wrongScheme = await basic.GetAsync("/v2");
        Assert.Equal("the Authorization header must be 'Bearer <API key or token>'", (await ServerFixture.JsonAsync(wrongScheme)).GetProperty("error").GetString());

        using var token = server.CreateClient("eyJhbGciOiJIUzI1NiJ9.e30.x");
        using var noIssuer = await token.GetAsync("/v2");
        Assert.Contains("no token issuer is configured", (await ServerFixture.JsonAsync(noIssuer)).GetProperty("error").GetString());
    }

    [Fact]
    public async Task Keys_are_listed_without_secrets_and_bad_requests_say_what_is_wrong()
    {
        var secret = await server.CreateKeyAsync("listed", "infer", "models:read");
        var listed = await server.Client.GetStringAsync("/v1/keys");
        Assert.DoesNotContain(secret, listed);
        Assert.DoesNotContain(secret.Split('_', 3)[2], listed);
        var key = JsonDocument.Parse(listed).RootElement.GetProperty("keys").EnumerateArray().Single(k => k.GetProperty("name").GetString() == "listed");
        Assert.Equal(["infer", "models:read"], key.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()));

        foreach (var (body, status, message) in new[]
        {
            ("""{"name":"x","scopes":["root"]}""", HttpStatusCode.BadRequest, "unknown scope 'root'"),
            ("""{"name":"x"}""", HttpStatusCode.BadRequest, "'scopes' must be an array of strings"),
            ("""{"scopes":["infer"]}""", HttpStatusCode.BadRequest, "'name' is required"),
            ("""{"name":"listed","scopes":["infer"]}""", HttpStatusCode.Conflict, "a key named 'listed' already exists"),
            ("""{"name":"x","scopes":["infer"],"requests_per_second":0}""", HttpStatusCode.BadRequest, "rate limit must be a positive number"),
            ("""{"name":"x","scopes":["infer"],"expires_in_days":"soon"}""", HttpStatusCode.BadRequest, "'expires_in_days' must be a number"),
            ("[1]", HttpStatusCode.BadRequest, "must be a JSON object"),
        })
        {
            using var response = await server.PostJsonAsync("/v1/keys", body);
            Assert.Equal(status, response.StatusCode);
            Assert.Contains(message, (await ServerFixture.JsonAsync(response)).GetProperty("error").GetString());
        }

        using var missing = await server.Client.DeleteAsync("/v1/keys/never-made");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task A_scope_cannot_smuggle_a_second_scope_and_what_is_answered_is_what_is_stored()
    {
        foreach (var (scope, shown) in new[]
        {
            ("infer:risk admin", "infer:risk admin"),
            ("infer:risk\nadmin", "infer:risk\\u000aadmin"),
            ("infer:risk\u0000admin", "infer:risk\\u0000admin"),
            ("admin ", "admin "),
            ("infer:../x", "infer:../x"),
            ("infer:", "infer:"),
        })
        {
            using var response = await server.PostJsonAsync("/v1/keys", JsonSerializer.Serialize(new { name = "smuggler", scopes = new[] { "models:read", scope } }));
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.StartsWith($"unknown scope '{shown}'; scopes are infer, models:read", (await ServerFixture.JsonAsync(response)).GetProperty("error").GetString());
        }

        // Unbounded input is not echoed back.
        using (var flood = await server.PostJsonAsync("/v1/keys", JsonSerializer.Serialize(new { name = "smuggler", scopes = new[] { "infer:" + new string('a', 100_000) } })))
        {
            Assert.Equal(HttpStatusCode.BadRequest, flood.StatusCode);
            Assert.InRange((await ServerFixture.JsonAsync(flood)).GetProperty("error").GetString()!.Length, 1, 400);
        }

        var listed = JsonDocument.Parse(await server.Client.GetStringAsync("/v1/keys")).RootElement.GetProperty("keys");
        Assert.DoesNotContain(listed.EnumerateArray(), k => k.GetProperty("name").GetString() == "smuggler");

        using var created = await server.PostJsonAsync("/v1/keys", """{"name":"exact","scopes":["infer:risk","models:read"]}""");
        var answered = (await ServerFixture.JsonAsync(created)).GetProperty("scopes").EnumerateArray().Select(s => s.GetString()).ToList();
        listed = JsonDocument.Parse(await server.Client.GetStringAsync("/v1/keys")).RootElement.GetProperty("keys");
        var stored = listed.EnumerateArray().Single(k => k.GetProperty("name").GetString() == "exact").GetProperty("scopes").EnumerateArray().Select(s => s.GetString());
        Assert.Equal(["infer:risk", "models:read"], answered);
        Assert.Equal(answered, stored);
    }

    [Fact]
    public async Task A_stored_scope_outside_the_grammar_grants_nothing()
    {
        var key = await server.CreateKeyAsync("tampered", "infer:risk");
        await using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(server.Root, "keys.db")}"))
        {
            // As an edited row or an older rule could leave it: a scope with a NUL, one with a space.
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = """UPDATE api_keys SET scopes = '["infer:risk","admin\u0000","models:read admin"]' WHERE name = 'tampered';""";
            Assert.Equal(1, await command.ExecuteNonQueryAsync());
        }

        using var client = server.CreateClient(key);
        using var keys = await client.GetAsync("/v1/keys");
        Assert.Equal(HttpStatusCode.Forbidden, keys.StatusCode);
        using var models = await client.GetAsync("/v2/models/risk");
        Assert.Equal(HttpStatusCode.Forbidden, models.StatusCode);
        using var infer = await client.PostAsync("/v2/models/risk/infer", new StringContent(
            """{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}]}"""));
        Assert.Equal(HttpStatusCode.OK, infer.StatusCode);
    }

    [Theory]
    [InlineData("GET", "/v2", "ServerMetadata")]
    [InlineData("GET", "/v2/health/live", "ServerLive")]
    [InlineData("GET", "/v2/health/ready", "ServerReady")]
    [InlineData("GET", "/v2/models/{model}", "ModelMetadata")]
    [InlineData("GET", "/v2/models/{model}/ready", "ModelReady")]
    [InlineData("GET", "/v2/models/{model}/config", "ModelConfig")]
    [InlineData("POST", "/v2/models/{model}/infer", "ModelInfer")]
    [InlineData("GET", "/v2/models/{model}/stats", "ModelStatistics")]
    [InlineData("POST", "/v2/repository/index", "RepositoryIndex")]
    [InlineData("POST", "/v2/repository/models/{model}/load", "RepositoryModelLoad")]
    [InlineData("POST", "/v2/repository/models/{model}/unload", "RepositoryModelUnload")]
    public void A_rest_route_and_its_grpc_method_need_the_same_scope(string method, string route, string grpcMethod)
    {
        var rest = RestRoutes().Single(r => r.Method == method && r.Endpoint.RoutePattern.RawText == route).Endpoint;
        var grpc = Endpoints().Single(e => e.RoutePattern.RawText == $"/{GrpcService}/{grpcMethod}");
        Assert.Equal(ScopeAuthorization.RequiredScope(grpc), ScopeAuthorization.RequiredScope(rest));
    }

    [Fact]
    public async Task The_repository_index_is_a_read_over_rest_and_grpc_alike()
    {
        var reader = await server.CreateKeyAsync("index-reader", "models:read");
        using var client = server.CreateClient(reader);
        using var index = await client.PostAsync("/v2/repository/index", null);
        Assert.Equal(HttpStatusCode.OK, index.StatusCode);
        Assert.Contains(JsonDocument.Parse(await index.Content.ReadAsStringAsync()).RootElement.EnumerateArray(), e => e.GetProperty("name").GetString() == "risk");

        using var channel = server.CreateGrpcChannel(reader);
        var grpc = await new MedServe.Grpc.Protocol.GRPCInferenceService.GRPCInferenceServiceClient(channel).RepositoryIndexAsync(new());
        Assert.Contains(grpc.Models, m => m.Name == "risk");

        // Loading stays a change.
        using var load = await client.PostAsync("/v2/repository/models/risk/load", null);
        Assert.Equal(HttpStatusCode.Forbidden, load.StatusCode);
    }

    /// <summary>For every scope, a key holding all the others (but not admin), and one holding just it.</summary>
    private async Task<Dictionary<string, string>> KeysLackingEachScope(string prefix)
    {
        var keys = new Dictionary<string, string>();
        foreach (var scope in Scopes.All)
        {
            var others = Scopes.All.Where(s => s != scope && s != Scopes.Admin).ToArray();
            keys[scope] = await server.CreateKeyAsync($"{prefix}-lacks-{scope}", others);
            keys["holds:" + scope] = await server.CreateKeyAsync($"{prefix}-holds-{scope}", scope);
        }

        keys["holds:" + Scopes.AnyCredential] = keys["holds:" + Scopes.Infer];
        return keys;
    }

    private IEnumerable<RouteEndpoint> Endpoints() =>
        server.Service<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>();

    private IEnumerable<(RouteEndpoint Endpoint, string Method)> RestRoutes() =>
        from endpoint in Endpoints()
        where endpoint.DisplayName?.StartsWith("gRPC", StringComparison.Ordinal) != true
        from method in endpoint.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET"]
        select (endpoint, method);

    /// <summary>A path that reaches the route without touching real models: names that do not exist.</summary>
    private static string Concrete(RoutePattern pattern) =>
        "/" + string.Join('/', pattern.PathSegments.Select(segment => string.Concat(segment.Parts.Select(part => part switch
        {
            RoutePatternLiteralPart literal => literal.Content,
            RoutePatternParameterPart { Name: "version" } => "7",
            RoutePatternParameterPart { IsCatchAll: true } => "no/such/route",
            RoutePatternParameterPart parameter => "no-such-" + parameter.Name,
            RoutePatternSeparatorPart separator => separator.Content,
            _ => throw new InvalidOperationException($"unexpected route part in {pattern.RawText}"),
        }))));

    /// <summary>Calls a method with an empty message (or an empty stream) and returns the status.</summary>
    private async Task<StatusCode> Call(string? credential, Google.Protobuf.Reflection.MethodDescriptor method)
    {
        using var channel = server.CreateGrpcChannel(credential);
        var invoker = channel.CreateCallInvoker();
        var bytes = Marshallers.Create<byte[]>(b => b, b => b);
        try
        {
            if (method.IsClientStreaming)
            {
                using var stream = invoker.AsyncDuplexStreamingCall(new Method<byte[], byte[]>(MethodType.DuplexStreaming, GrpcService, method.Name, bytes, bytes), null, default);
                await stream.RequestStream.CompleteAsync();
                while (await stream.ResponseStream.MoveNext(CancellationToken.None))
                {
                }
            }
            else
            {
                await invoker.AsyncUnaryCall(new Method<byte[], byte[]>(MethodType.Unary, GrpcService, method.Name, bytes, bytes), null, default, []);
            }

            return StatusCode.OK;
        }
        catch (RpcException e)
        {
            return e.StatusCode;
        }
    }
}
