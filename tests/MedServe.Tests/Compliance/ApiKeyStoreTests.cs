using MedServe.Compliance.Access;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Time.Testing;

namespace MedServe.Tests.Compliance;

public sealed class ApiKeyStoreTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "medserve-keys-" + Guid.NewGuid().ToString("N"));
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 27, 12, 0, 0, TimeSpan.Zero));

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task A_key_authenticates_and_only_its_salted_hash_is_stored()
    {
        var store = await Open();

        var created = await store.CreateAsync("icu-dashboard", ["infer", "models:read"]);
        var identity = await store.AuthenticateAsync(created.Key);

        Assert.StartsWith("ms_", created.Key);
        Assert.Equal("icu-dashboard", identity!.Name);
        Assert.Equal(["infer", "models:read"], identity.Scopes);
        var secret = created.Key.Split('_', 3)[2];
        Assert.DoesNotContain(secret, System.Text.Encoding.Latin1.GetString(await File.ReadAllBytesAsync(Path.Combine(_root, "keys.db"))), StringComparison.Ordinal);
        Assert.Null(await store.AuthenticateAsync(created.Key[..^1] + (created.Key[^1] == 'A' ? 'B' : 'A')));
        Assert.Null(await store.AuthenticateAsync("Bearer nonsense"));
    }

    [Fact]
    public async Task Revoked_and_expired_keys_stop_working_and_list_shows_no_secrets()
    {
        var store = await Open();
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

    [Fact]
    public async Task A_remembered_key_is_forgotten_when_revoked_and_rechecked_for_expiry()
    {
        var store = await Open();
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
    [InlineData("superuser", "unknown scope 'superuser'")]
    [InlineData("infer:", "unknown scope 'infer:'")]
    public async Task Unknown_scopes_are_refused(string scope, string message)
    {
        var store = await Open();

        Assert.Contains(message, (await Assert.ThrowsAsync<ArgumentException>(() => store.CreateAsync("k", [scope]))).Message);
    }

    [Fact]
    public async Task Names_are_unique_and_a_model_limited_scope_is_accepted()
    {
        var store = await Open();
        await store.CreateAsync("sepsis-only", ["infer:sepsis"]);

        Assert.Contains("already exists", (await Assert.ThrowsAsync<ApiKeyNameTakenException>(() => store.CreateAsync("sepsis-only", ["infer"]))).Message);
        Assert.Contains("no active key named 'ghost'", (await Assert.ThrowsAsync<ArgumentException>(() => store.RevokeAsync("ghost"))).Message);
    }

    private Task<ApiKeyStore> Open() => ApiKeyStore.OpenAsync(Path.Combine(_root, "keys.db"), _time);
}
