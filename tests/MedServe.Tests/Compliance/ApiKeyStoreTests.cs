using MedServe.Compliance.Access;
using Microsoft.Data.Sqlite;
using MedServe.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace MedServe.Tests.Compliance;

public sealed class ApiKeyStoreTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "medserve-keys-" + Guid.NewGuid().ToString("N"));
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 27, 12, 0, 0, TimeSpan.Zero));

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task A_key_authenticates_and_only_its_salted_hash_is_stored(string provider)
    {
        var store = await Open(provider);

        var created = await store.CreateAsync("icu-dashboard", ["infer", "models:read"]);
        var identity = await store.AuthenticateAsync(created.Key);

        Assert.StartsWith("ms_", created.Key);
        Assert.Equal("icu-dashboard", identity!.Name);
        Assert.Equal(["infer", "models:read"], identity.Scopes);
        var secret = created.Key.Split('_', 3)[2];
        Assert.DoesNotContain(secret, await EverythingStored(provider), StringComparison.Ordinal);
        Assert.Null(await store.AuthenticateAsync(created.Key[..^1] + (created.Key[^1] == 'A' ? 'B' : 'A')));
        Assert.Null(await store.AuthenticateAsync("Bearer nonsense"));
    }

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task An_imported_key_authenticates_as_given_and_only_its_hash_is_stored_and_a_malformed_one_is_refused_unrepeated(string provider)
    {
        var store = await Open(provider);
        var key = ApiKeyStore.Generate();

        var imported = await store.ImportAsync("admin", ["admin"], key);

        Assert.Equal(key, imported.Key);
        Assert.Equal("admin", (await store.AuthenticateAsync(key))!.Name);
        Assert.DoesNotContain(key.Split('_', 3)[2], await EverythingStored(provider), StringComparison.Ordinal);
        foreach (var bad in new[] { "hunter2", key.ToUpperInvariant(), key[..^1], key + "x", key.Replace('_', '.') })
        {
            var error = await Assert.ThrowsAsync<ArgumentException>(() => store.ImportAsync("other", ["admin"], bad));
            Assert.Contains("not a MedServe API key", error.Message);
            Assert.DoesNotContain(bad, error.Message, StringComparison.Ordinal);
        }

        await Assert.ThrowsAsync<ApiKeyNameTakenException>(() => store.ImportAsync("admin", ["admin"], ApiKeyStore.Generate()));
    }

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task Revoked_and_expired_keys_stop_working_and_list_shows_no_secrets(string provider)
    {
        var store = await Open(provider);
        var revoked = await store.CreateAsync("old-etl", ["infer"]);
        var shortLived = await store.CreateAsync("demo", ["infer"], TimeSpan.FromHours(1));
        var expired = await store.CreateAsync("contractor", ["models:read"]);

        await store.RevokeAsync("old-etl");
        await store.ExpireAsync("contractor");
        _time.Advance(TimeSpan.FromMinutes(59));
        Assert.NotNull(await store.AuthenticateAsync(shortLived.Key));
        _time.Advance(TimeSpan.FromMinutes(2));

        Assert.Null(await store.AuthenticateAsync(revoked.Key));
        Assert.Null(await store.AuthenticateAsync(shortLived.Key));
        Assert.Null(await store.AuthenticateAsync(expired.Key));
        var listed = await store.ListAsync();
        Assert.Equal(["old-etl", "demo", "contractor"], listed.Select(k => k.Name));
        Assert.NotNull(listed[0].RevokedAt);
    }

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task A_remembered_key_is_forgotten_when_revoked_and_rechecked_for_expiry(string provider)
    {
        var store = await Open(provider);
        var key = await store.CreateAsync("ward-app", ["infer:risk"], TimeSpan.FromSeconds(5), requestsPerSecond: 50);
        var first = await store.AuthenticateAsync(key.Key);
        Assert.Equal(50, first!.RequestsPerSecond);
        _time.Advance(TimeSpan.FromSeconds(6));
        Assert.Null(await store.AuthenticateAsync(key.Key)); // expired while remembered

        var other = await store.CreateAsync("etl", ["infer"]);
        Assert.NotNull(await store.AuthenticateAsync(other.Key));
        await store.RevokeAsync("etl");
        Assert.Null(await store.AuthenticateAsync(other.Key)); // at once, not after the cache time
    }

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task Unknown_and_malformed_keys_cost_no_query_after_the_first(string provider)
    {
        var store = await Open(provider);
        var real = await store.CreateAsync("ward-app", ["infer"]);
        var id = real.Key.Split('_')[1];
        var madeUp = "ms_0123456789abcdef_" + new string('A', 43);

        for (var i = 0; i < 100; i++)
        {
            Assert.Null(await store.AuthenticateAsync(madeUp));
            Assert.Null(await store.AuthenticateAsync("ms_not-an-id_x"));
            Assert.Null(await store.AuthenticateAsync("ms_" + id.ToUpperInvariant() + "_x"));
        }

        Assert.Equal(1, store.Lookups);

        // Remembered no longer than a good key is.
        _time.Advance(TimeSpan.FromSeconds(11));
        Assert.Null(await store.AuthenticateAsync(madeUp));
        Assert.Equal(2, store.Lookups);
        Assert.NotNull(await store.AuthenticateAsync(real.Key));
    }

    [Theory]
    [InlineData("superuser", "unknown scope 'superuser'")]
    [InlineData("infer:", "unknown scope 'infer:'")]
    [InlineData("infer:risk admin", "unknown scope 'infer:risk admin'")]
    [InlineData("infer:risk\nadmin", "unknown scope 'infer:risk\\u000aadmin'")]
    [InlineData("admin ", "unknown scope 'admin '")]
    public async Task Unknown_scopes_are_refused(string scope, string message)
    {
        var store = await Open("sqlite");

        Assert.Contains(message, (await Assert.ThrowsAsync<ArgumentException>(() => store.CreateAsync("k", [scope]))).Message);
    }

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task Names_are_unique_and_a_model_limited_scope_is_accepted(string provider)
    {
        var store = await Open(provider);
        await store.CreateAsync("sepsis-only", ["infer:sepsis"]);

        Assert.Contains("already exists", (await Assert.ThrowsAsync<ApiKeyNameTakenException>(() => store.CreateAsync("sepsis-only", ["infer"]))).Message);
        Assert.Contains("no active key named 'ghost'", (await Assert.ThrowsAsync<ArgumentException>(() => store.RevokeAsync("ghost"))).Message);
    }

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task Scopes_are_stored_as_a_json_array_and_read_back_exactly(string provider)
    {
        var store = await Open(provider);
        var created = await store.CreateAsync("ward", ["infer:risk", "models:read"]);

        Assert.Equal("[\"infer:risk\",\"models:read\"]", await StoredScopes("ward"));
        Assert.Equal(created.Info.Scopes, (await store.AuthenticateAsync(created.Key))!.Scopes);
        Assert.Equal(["infer:risk", "models:read"], (await store.ListAsync()).Single().Scopes);
    }

    [Theory]
    [InlineData("sqlite")]
    [PostgresData]
    public async Task Rows_from_before_the_json_format_still_read_and_a_stored_scope_outside_the_grammar_grants_nothing(string provider)
    {
        var store = await Open(provider);
        var legacy = await store.CreateAsync("legacy", ["infer"]);
        var edited = await store.CreateAsync("edited", ["infer"]);
        await SetStoredScopes("legacy", "infer:risk models:read");
        await SetStoredScopes("edited", "[\"infer:risk\",\"admin\\u0000\",\"infer:../x\",null,\"superuser\"]");

        Assert.Equal(["infer:risk", "models:read"], (await store.AuthenticateAsync(legacy.Key))!.Scopes);
        Assert.Equal(["infer:risk"], (await store.AuthenticateAsync(edited.Key))!.Scopes);
    }

    /// <summary>SQLite: the whole file; PostgreSQL: every row as text.</summary>
    private async Task<string> EverythingStored(string provider) =>
        provider == "sqlite"
            ? System.Text.Encoding.Latin1.GetString(await File.ReadAllBytesAsync(Path.Combine(_root, "keys.db")))
            : (string)(await _database!.ScalarAsync("SELECT string_agg(k::text, ' ') FROM api_keys k;", default))!;

    private async Task<string> StoredScopes(string name) =>
        (string)(await _database!.ScalarAsync("SELECT scopes FROM api_keys WHERE name = @n;", default, ("@n", name)))!;

    private async Task SetStoredScopes(string name, string scopes) =>
        Assert.Equal(1, await _database!.WriteAsync(session => session.ExecuteAsync("UPDATE api_keys SET scopes = @s WHERE name = @n;", default, ("@s", scopes), ("@n", name))));

    private MedServe.Storage.Database? _database;

    private async Task<ApiKeyStore> Open(string provider) => await ApiKeyStore.OpenAsync(_database ??= await TestPostgres.OpenAsync(provider, _root, "keys.db"), _time);
}
