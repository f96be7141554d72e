using System.Net;
using System.Security.Cryptography;
using System.Text;
using MedServe.Compliance.Journal;
using MedServe.IntegrationTests.Support;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace MedServe.IntegrationTests;

/// <summary>Settings the shared server must not have, each on a server of its own: a JWT issuer, a failing audit store, tight limits.</summary>
public sealed class SecuritySettingsTests
{
    private const string RiskBody = """{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}]}""";

    [Fact]
    public async Task Jwt_bearer_tokens_from_the_configured_issuer_carry_their_scopes()
    {
        using var issuerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var strangerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var pem = await PublicKeyFile.WriteAsync(issuerKey);
        var publicKey = pem.Path;
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>
        {
            ["MedServe:Auth:Jwt:SigningKeyPath"] = publicKey,
            ["MedServe:Auth:Jwt:Issuer"] = "https://idp.hospital.test",
            ["MedServe:Auth:Jwt:Audience"] = "medserve",
        });
        string Token(ECDsa key, string scope, string issuer = "https://idp.hospital.test", string audience = "medserve", int minutes = 5) =>
            new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
            {
                Issuer = issuer,
                Audience = audience,
                NotBefore = DateTime.UtcNow.AddMinutes(-10),
                Expires = DateTime.UtcNow.AddMinutes(minutes),
                Claims = new Dictionary<string, object> { ["sub"] = "dr.house", ["scope"] = scope },
                SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(key), SecurityAlgorithms.EcdsaSha256),
            });

        using (var reader = server.Client(Token(issuerKey, "models:read infer:risk")))
        {
            Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync("/v2/models/risk")).StatusCode);
            using var inferred = await reader.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody));
            Assert.Equal(HttpStatusCode.OK, inferred.StatusCode);
            var record = server.Services.GetRequiredService<AuditJournal>().ReadRange(DateTimeOffset.MinValue, DateTimeOffset.MaxValue).Single(r => r.Event.RequestId == inferred.Headers.GetValues("X-Request-Id").Single());
            Assert.Equal("jwt:dr.house", record.Event.Actor);
            Assert.Equal(HttpStatusCode.Forbidden, (await reader.PostAsync("/v2/repository/models/risk/unload", null)).StatusCode);
        }

        foreach (var (token, why) in new[]
        {
            (Token(strangerKey, "admin"), "signed by another key"),
            (Token(issuerKey, "admin", issuer: "https://evil.test"), "another issuer"),
            (Token(issuerKey, "admin", audience: "someone-else"), "another audience"),
            (Token(issuerKey, "admin", minutes: -5), "expired"),
        })
        {
            using var client = server.Client(token);
            using var response = await client.GetAsync("/v2/models/risk");
            Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, why);
            Assert.StartsWith("the bearer token is not valid", (await ServerFixture.JsonAsync(response)).GetProperty("error").GetString());
        }

        using var grpcChannel = global::Grpc.Net.Client.GrpcChannel.ForAddress(server.GrpcAddress, new global::Grpc.Net.Client.GrpcChannelOptions
        {
            HttpClient = server.Client(Token(issuerKey, "models:read")),
            DisposeHttpClient = true,
        });
        var metadata = await new MedServe.Grpc.Protocol.GRPCInferenceService.GRPCInferenceServiceClient(grpcChannel).ServerMetadataAsync(new());
        Assert.Equal("medserve", metadata.Name);
    }

    [Theory]
    [InlineData(null, null, false, "no issuer to validate tokens against: set MedServe:Auth:Jwt:Issuer")]
    [InlineData(null, null, false, "no audience to validate tokens against: set MedServe:Auth:Jwt:Audience")]
    [InlineData("https://idp.hospital.test", null, false, "or MedServe:Auth:Jwt:AllowAnyAudience=true if this issuer mints tokens for this server only")]
    [InlineData(null, "medserve", true, "no issuer to validate tokens against")]
    [InlineData("https://idp.hospital.test", "medserve", true, "MedServe:Auth:Jwt:Audience and MedServe:Auth:Jwt:AllowAnyAudience=true contradict each other")]
    public async Task A_jwt_setup_with_nothing_to_validate_tokens_against_is_refused_at_start(string? issuer, string? audience, bool anyAudience, string message)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var pem = await PublicKeyFile.WriteAsync(key);
        var publicKey = pem.Path;
        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => RunningServer.StartAsync(new Dictionary<string, string?>
        {
            ["MedServe:Auth:Jwt:SigningKeyPath"] = publicKey,
            ["MedServe:Auth:Jwt:Issuer"] = issuer,
            ["MedServe:Auth:Jwt:Audience"] = audience,
            ["MedServe:Auth:Jwt:AllowAnyAudience"] = anyAudience ? "true" : null,
        }));
        Assert.StartsWith("refusing to start with JWT bearer tokens enabled: ", error.Message);
        Assert.Contains(message, error.Message);
        Assert.DoesNotContain(publicKey, error.Message);
    }

    [Fact]
    public async Task Jwt_tokens_need_the_audience_an_expiry_within_30_seconds_of_skew_and_a_signature()
    {
        using var issuerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var pem = await PublicKeyFile.WriteAsync(issuerKey);
        var publicKey = pem.Path;
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>
        {
            ["MedServe:Auth:Jwt:SigningKeyPath"] = publicKey,
            ["MedServe:Auth:Jwt:Issuer"] = "https://idp.hospital.test",
            ["MedServe:Auth:Jwt:Audience"] = "medserve",
        });
        var now = DateTime.UtcNow;
        foreach (var (token, accepted, why) in new[]
        {
            (Mint(issuerKey, "medserve", now.AddMinutes(5)), true, "valid"),
            (Mint(issuerKey, "medserve", now.AddSeconds(-5)), true, "expired 5 s ago, within the 30 s skew"),
            (Mint(issuerKey, "medserve", now.AddMinutes(-2)), false, "expired 2 minutes ago (the default 5-minute skew accepted it)"),
            (Mint(issuerKey, null, now.AddMinutes(5)), false, "no audience"),
            (Mint(issuerKey, "medserve-staging", now.AddMinutes(5)), false, "another audience"),
            (Mint(issuerKey, "medserve", null), false, "no expiry"),
            (Mint(null, "medserve", now.AddMinutes(5)), false, "unsigned"),
        })
        {
            using var client = server.Client(token);
            using var response = await client.GetAsync("/v2/models/risk");
            Assert.True(response.StatusCode == (accepted ? HttpStatusCode.OK : HttpStatusCode.Unauthorized), $"{why}: {response.StatusCode}");
        }
    }

    [Fact]
    public async Task Allowing_any_audience_is_an_explicit_setting_and_the_issuer_is_still_checked()
    {
        using var issuerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var pem = await PublicKeyFile.WriteAsync(issuerKey);
        var publicKey = pem.Path;
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>
        {
            ["MedServe:Auth:Jwt:SigningKeyPath"] = publicKey,
            ["MedServe:Auth:Jwt:Issuer"] = "https://idp.hospital.test",
            ["MedServe:Auth:Jwt:AllowAnyAudience"] = "true",
        });
        var expires = DateTime.UtcNow.AddMinutes(5);
        foreach (var (token, accepted, why) in new[]
        {
            (Mint(issuerKey, "anything", expires), true, "any audience"),
            (Mint(issuerKey, null, expires), true, "no audience"),
            (Mint(issuerKey, "medserve", expires, issuer: "https://evil.test"), false, "another issuer"),
        })
        {
            using var client = server.Client(token);
            using var response = await client.GetAsync("/v2/models/risk");
            Assert.True(response.StatusCode == (accepted ? HttpStatusCode.OK : HttpStatusCode.Unauthorized), $"{why}: {response.StatusCode}");
        }
    }

    /// <summary>A token with scope models:read; no key leaves it unsigned, no expiry leaves out exp (the handler adds none).</summary>
    private static string Mint(ECDsa? key, string? audience, DateTime? expires, string issuer = "https://idp.hospital.test") =>
        new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = audience,
            IssuedAt = DateTime.UtcNow.AddMinutes(-10),
            NotBefore = DateTime.UtcNow.AddMinutes(-10),
            Expires = expires,
            Claims = new Dictionary<string, object> { ["sub"] = "dr.house", ["scope"] = "models:read" },
            SigningCredentials = key is null ? null : new SigningCredentials(new ECDsaSecurityKey(key), SecurityAlgorithms.EcdsaSha256),
        });

    [Fact]
    public async Task When_the_journal_cannot_be_written_no_answer_leaves_and_the_chain_stays_whole()
    {
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>());
        using var client = server.Client(server.AdminKey);
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody))).StatusCode);

        BreakDisk(server, "disk failure");
        HttpResponseMessage? failed = null;
        try
        {
            failed = await client.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody));
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
            Assert.DoesNotContain("outputs", await failed.Content.ReadAsStringAsync());
        }
        catch (HttpRequestException)
        {
            // Also closed: the connection was dropped before any answer.
        }
        finally
        {
            failed?.Dispose();
        }

        // While the disk fails: not ready, and a refused credential is still answered at once (its record does not hold up the answer).
        using var anonymous = server.Client(null);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await anonymous.GetAsync("/v2/health/ready")).StatusCode);
        using (var refused = await anonymous.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody)))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        BreakDisk(server, null);
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/v2/health/ready")).StatusCode);
        var verdict = server.Services.GetRequiredService<AuditJournal>().Verify();
        Assert.True(verdict.Intact, verdict.Problem);
    }

    [Fact]
    public async Task A_journal_whose_last_records_were_deleted_is_refused_at_start_with_readiness_false()
    {
        var root = Path.Combine(Path.GetTempPath(), "medserve-truncated-" + Guid.NewGuid().ToString("N"));
        var settings = new Dictionary<string, string?>();
        try
        {
            long keep;
            await using (var first = await RunningServer.StartAsync(settings, root: root))
            {
                using var client = first.Client(first.AdminKey);
                Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody))).StatusCode);
                keep = first.Services.GetRequiredService<AuditJournal>().Writer!.DurableSequence;
                for (var i = 0; i < 5; i++)
                {
                    Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody))).StatusCode);
                }
            }

            // Cut the segment after record `keep`: what an attacker deleting the last records leaves.
            var segment = Directory.GetFiles(Path.Combine(root, "journal"), "*.seg").Order().Last();
            var end = JournalSegments.Scan(segment, (body, _, _) => JournalFormat.SequenceOf(body.Span) < keep).End;
            using (var file = File.OpenHandle(segment, FileMode.Open, FileAccess.ReadWrite))
            {
                RandomAccess.SetLength(file, end);
            }

            await using var second = await RunningServer.StartAsync(settings, root: root);
            using var admin = second.Client(second.AdminKey);
            using var refused = await admin.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            var message = (await ServerFixture.JsonAsync(refused)).GetProperty("error").GetString()!;
            Assert.Contains("records were deleted", message);
            Assert.DoesNotContain(root, message);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, (await second.Client(null).GetAsync("/v2/health/ready")).StatusCode);

            // Verification over the files names it too.
            var verdict = second.Services.GetRequiredService<AuditJournal>().Verify();
            Assert.False(verdict.Intact);
            Assert.Contains("deleted", verdict.Problem);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task Failing_open_is_a_setting_and_answers_while_the_store_is_down()
    {
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?> { ["MedServe:Audit:FailClosed"] = "false" });
        using var client = server.Client(server.AdminKey);
        BreakDisk(server, "disk failure");
        using var answered = await client.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody));
        Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
        var requestId = answered.Headers.GetValues("X-Request-Id").Single();
        Assert.DoesNotContain(server.Services.GetRequiredService<AuditJournal>().ReadRange(DateTimeOffset.MinValue, DateTimeOffset.MaxValue), r => r.Event.RequestId == requestId);
    }

    [Fact]
    public async Task A_key_over_its_rate_is_answered_429_with_retry_after()
    {
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>());
        using var admin = server.Client(server.AdminKey);
        using var created = await admin.PostAsync("/v1/keys", new StringContent("""{"name":"slow","scopes":["infer"],"requests_per_second":2}"""));
        var key = (await ServerFixture.JsonAsync(created)).GetProperty("key").GetString();
        using var client = server.Client(key);
        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? limited = null;
        for (var i = 0; i < 12; i++)
        {
            var response = await client.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody));
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                limited ??= response;
            }
        }

        Assert.NotNull(limited);
        Assert.Equal("1", limited.Headers.GetValues("Retry-After").Single());
        Assert.Equal("rate limit exceeded: this key may make 2 requests per second", (await ServerFixture.JsonAsync(limited)).GetProperty("error").GetString());
        Assert.InRange(statuses.Count(s => s == HttpStatusCode.OK), 2, 8);

        // Other keys have their own bucket (and the server default here is unlimited).
        Assert.Equal(HttpStatusCode.OK, (await admin.PostAsync("/v2/models/risk/infer", new StringContent(RiskBody))).StatusCode);
    }

    [Fact]
    public async Task Too_many_or_too_large_headers_and_slow_requests_get_their_own_status_and_a_json_error()
    {
        await using var server = await RunningServer.StartAsync(new Dictionary<string, string?>
        {
            ["MedServe:Limits:MaxRequestHeaderCount"] = "20",
            ["MedServe:Limits:MaxRequestHeadersBytes"] = "4096",
            ["MedServe:Limits:RequestTimeout"] = "00:00:00.300",
        });
        using var client = server.Client(server.AdminKey);
        using (var many = new HttpRequestMessage(HttpMethod.Get, "/v2/models/risk"))
        {
            for (var i = 0; i < 25; i++)
            {
                many.Headers.Add($"X-Extra-{i}", "1");
            }

            using var response = await client.SendAsync(many);
            Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, response.StatusCode);
            Assert.StartsWith("the request has 2", (await ServerFixture.JsonAsync(response)).GetProperty("error").GetString());
        }

        using (var large = new HttpRequestMessage(HttpMethod.Get, "/v2/models/risk"))
        {
            large.Headers.Add("X-Large", new string('a', 5000));
            using var response = await client.SendAsync(large);
            Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, response.StatusCode);
            Assert.EndsWith("at most 4096 are accepted", (await ServerFixture.JsonAsync(response)).GetProperty("error").GetString());
        }

        using var slow = await client.PostAsync("/v2/models/risk/infer", new SlowContent(Encoding.UTF8.GetBytes(RiskBody), TimeSpan.FromSeconds(2)));
        Assert.Equal(HttpStatusCode.GatewayTimeout, slow.StatusCode);
        Assert.Equal("the request did not finish within 0.3 s (MedServe:Limits:RequestTimeout)", (await ServerFixture.JsonAsync(slow)).GetProperty("error").GetString());
    }

    [Fact]
    public async Task Stored_data_is_encrypted_under_a_master_key_created_owner_only_or_the_configured_one()
    {
        await using (var server = await RunningServer.StartAsync(new Dictionary<string, string?>()))
        {
            var crypto = server.Services.GetRequiredService<MedServe.Compliance.Encryption.EnvelopeEncryption>();
            var envelope = crypto.Encrypt("prediction for MRN-1"u8);
            Assert.Equal("k1", MedServe.Compliance.Encryption.EnvelopeEncryption.KeyId(envelope));
            Assert.Equal("prediction for MRN-1"u8.ToArray(), crypto.Decrypt(envelope));
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(server.Root, "secrets", "master.keys")));
            }
        }

        var rotated = $"k1:{Convert.ToBase64String(new byte[32])};r7:{Convert.ToBase64String(Enumerable.Repeat((byte)7, 32).ToArray())}";
        await using (var server = await RunningServer.StartAsync(new Dictionary<string, string?> { ["MedServe:Encryption:MasterKeys"] = rotated }))
        {
            var envelope = server.Services.GetRequiredService<MedServe.Compliance.Encryption.EnvelopeEncryption>().Encrypt("x"u8);
            Assert.Equal("r7", MedServe.Compliance.Encryption.EnvelopeEncryption.KeyId(envelope));
        }

        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() =>
            RunningServer.StartAsync(new Dictionary<string, string?> { ["MedServe:Encryption:MasterKeys"] = "k1:tooshort" }));
        Assert.Contains("Encryption: master key 'k1' is", error.Message);
    }

    /// <summary>Every journal batch fails as a failed disk's would, until cleared with null.</summary>
    private static void BreakDisk(RunningServer server, string? error) =>
        server.Services.GetRequiredService<AuditJournal>().Writer!.InjectWriteFault(error);

    /// <summary>Sends the first byte, then stalls: a client that never finishes its request.</summary>
    private sealed class SlowContent(byte[] body, TimeSpan stall) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            await stream.WriteAsync(body.AsMemory(0, 1));
            await stream.FlushAsync();
            await Task.Delay(stall);
            await stream.WriteAsync(body.AsMemory(1));
        }

        protected override bool TryComputeLength(out long length)
        {
            length = body.Length;
            return true;
        }
    }

    /// <summary>An issuer's public key in a temp PEM file, deleted on dispose.</summary>
    private sealed class PublicKeyFile(string path) : IDisposable
    {
        public string Path { get; } = path;

        public static async Task<PublicKeyFile> WriteAsync(AsymmetricAlgorithm key)
        {
            var file = new PublicKeyFile(System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"medserve-jwt-{Guid.NewGuid():N}.pem"));
            await File.WriteAllTextAsync(file.Path, key.ExportSubjectPublicKeyInfoPem());
            return file;
        }

        public void Dispose() => File.Delete(Path);
    }
}
