using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using MedServe.Security;
using MedServe.Storage;

namespace MedServe.Compliance.Access;

/// <summary>What an API key may do; the secret itself is never stored.</summary>
/// <param name="RequestsPerSecond">This key's rate limit; null takes the server's default.</param>
public sealed record ApiKeyInfo(string Id, string Name, IReadOnlyList<string> Scopes, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt, DateTimeOffset? RevokedAt, int? RequestsPerSecond = null);

/// <summary>The name is taken: a conflict, not a malformed request.</summary>
public sealed class ApiKeyNameTakenException(string message) : ArgumentException(message);

/// <summary>A key as handed out once: <c>ms_&lt;id&gt;_&lt;secret&gt;</c>.</summary>
public sealed record CreatedApiKey(ApiKeyInfo Info, string Key);

/// <summary>
/// API keys: 256-bit random secrets shown once; only a salted SHA-256 is stored (a slow hash adds
/// nothing for secrets this long). Keys can be listed without secrets, expired and revoked.
/// A key that authenticated is remembered for a few seconds so the hot path does not query SQLite
/// on every request; revoking or expiring a key through this store forgets it at once.
/// </summary>
public sealed class ApiKeyStore
{
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(10);
    private const int CacheLimit = 10_000;

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, (ApiKeyInfo Info, DateTimeOffset CheckedAt)> _recent = new(StringComparer.Ordinal);

    // Key ids the store does not hold, remembered as long as good keys are: a client retrying a
    // revoked or made-up key costs a dictionary lookup, not a SQLite query, each time.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, DateTimeOffset> _unknown = new(StringComparer.Ordinal);
    private long _lookups;
    /// <summary>The change feed's topic: a key created, revoked or expired on any replica makes every replica forget what it remembered.</summary>
    public const string ChangeTopic = "keys";

    // Append; never edit a released one. The first is IF NOT EXISTS: files from before migrations adopt it.
    private static readonly Migration[] Migrations =
    [
        new("""
            CREATE TABLE IF NOT EXISTS api_keys (
                id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, scopes TEXT NOT NULL, salt TEXT NOT NULL, hash TEXT NOT NULL,
                created_at BIGINT NOT NULL, expires_at BIGINT, revoked_at BIGINT, requests_per_second INTEGER);
            """, """
            CREATE TABLE IF NOT EXISTS api_keys (
                id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, scopes TEXT NOT NULL, salt TEXT NOT NULL, hash TEXT NOT NULL,
                created_at BIGINT NOT NULL, expires_at BIGINT, revoked_at BIGINT, requests_per_second INTEGER,
                seq BIGINT GENERATED ALWAYS AS IDENTITY);
            """),
    ];

    private readonly Database _database;
    private readonly TimeProvider _time;

    private ApiKeyStore(Database database, TimeProvider time)
    {
        _database = database;
        _time = time;
    }

    /// <summary>Opens (creating if needed) an embedded key file.</summary>
    public static Task<ApiKeyStore> OpenAsync(string path, TimeProvider time) => OpenAsync(Database.OpenSqlite(path), time);

    public static async Task<ApiKeyStore> OpenAsync(Database database, TimeProvider time)
    {
        await database.MigrateAsync("api_keys_migrations", Migrations, time).ConfigureAwait(false);
        return new ApiKeyStore(database, time);
    }

    /// <summary>Forgets every remembered key and miss: the next request of each re-reads the store (a change on another replica).</summary>
    public void Forget()
    {
        _recent.Clear();
        _unknown.Clear();
    }

    /// <summary>Creates a key; scopes are checked (<c>infer:&lt;model&gt;</c> limits inference to one model).</summary>
    public async Task<CreatedApiKey> CreateAsync(string name, IReadOnlyList<string> scopes, TimeSpan? lifetime = null, int? requestsPerSecond = null)
    {
        Check(name, scopes, requestsPerSecond);
        var (id, secret) = Split(Generate())!.Value;
        return await InsertAsync(name, scopes, id, secret, lifetime, requestsPerSecond).ConfigureAwait(false);
    }

    /// <summary>
    /// Stores a key made elsewhere (<see cref="Generate"/>, e.g. kept in a Kubernetes Secret) under
    /// <paramref name="name"/>, so a deployment can know its admin key before any replica starts.
    /// </summary>
    /// <exception cref="ArgumentException">The text is not a key in MedServe's form (the message never repeats it).</exception>
    public async Task<CreatedApiKey> ImportAsync(string name, IReadOnlyList<string> scopes, string key)
    {
        if (Split(key) is not { } parts)
        {
            throw new ArgumentException("not a MedServe API key: it must read ms_<16 lowercase hex digits>_<43 characters of A-Z a-z 0-9 - _> (medserve keys generate makes one)");
        }

        Check(name, scopes, null);
        return await InsertAsync(name, scopes, parts.Id, parts.Secret, null, null).ConfigureAwait(false);
    }

    private static void Check(string name, IReadOnlyList<string> scopes, int? requestsPerSecond)
    {
        foreach (var scope in scopes)
        {
            if (!Scopes.IsValid(scope))
            {
                throw new ArgumentException(Scopes.Refusal(scope));
            }
        }

        if (scopes.Count == 0)
        {
            throw new ArgumentException("a key needs at least one scope");
        }

        if (string.IsNullOrWhiteSpace(name) || name.Any(char.IsControl))
        {
            throw new ArgumentException("a key needs a name without control characters");
        }

        if (requestsPerSecond is <= 0)
        {
            throw new ArgumentException("a key's rate limit must be a positive number of requests per second");
        }
    }

    /// <summary>A fresh key: 64 random bits of id, 256 of secret.</summary>
    public static string Generate() =>
        $"ms_{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}_{Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_')}";

    /// <summary>The id and secret of a key in MedServe's form, or null.</summary>
    private static (string Id, string Secret)? Split(string key)
    {
        var parts = key.Split('_', 3);
        return parts.Length == 3 && parts[0] == "ms" && parts[1].Length == 16 && parts[1].All(char.IsAsciiHexDigitLower)
            && parts[2].Length == 43 && parts[2].All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_')
            ? (parts[1], parts[2])
            : null;
    }

    private async Task<CreatedApiKey> InsertAsync(string name, IReadOnlyList<string> scopes, string id, string secret, TimeSpan? lifetime, int? requestsPerSecond)
    {
        var salt = RandomNumberGenerator.GetBytes(16);
        var now = _time.GetUtcNow();
        var expires = lifetime is { } l ? now + l : (DateTimeOffset?)null;
        try
        {
            await ExecuteAsync("INSERT INTO api_keys (id, name, scopes, salt, hash, created_at, expires_at, requests_per_second) VALUES (@id, @n, @s, @salt, @h, @c, @e, @r);",
                ("@id", id), ("@n", name), ("@s", WriteScopes(scopes)), ("@salt", Convert.ToBase64String(salt)), ("@h", Hash(salt, secret)),
                ("@c", now.ToUnixTimeMilliseconds()), ("@e", expires?.ToUnixTimeMilliseconds()), ("@r", requestsPerSecond)).ConfigureAwait(false);
        }
        catch (Exception e) when (Database.IsUniqueViolation(e))
        {
            throw new ApiKeyNameTakenException($"a key named '{name}' already exists");
        }

        _unknown.TryRemove(id, out _);
        return new CreatedApiKey(new ApiKeyInfo(id, name, scopes, now, expires, null, requestsPerSecond), $"ms_{id}_{secret}");
    }

    /// <summary>The key's identity when it is genuine, unexpired and unrevoked; null otherwise.</summary>
    public async ValueTask<ApiKeyInfo?> AuthenticateAsync(string presented)
    {
        var now = _time.GetUtcNow();
        if (_recent.TryGetValue(presented, out var seen) && now - seen.CheckedAt < CacheFor)
        {
            return seen.Info.ExpiresAt is null || seen.Info.ExpiresAt > now ? seen.Info : null;
        }

        var info = await LookUpAsync(presented, now).ConfigureAwait(false);
        if (info is null)
        {
            _recent.TryRemove(presented, out _);
            return null;
        }

        if (_recent.Count >= CacheLimit)
        {
            _recent.Clear();
        }

        _recent[presented] = (info, now);
        return info;
    }

    /// <summary>Queries of the store made to authenticate (for tests and measurement).</summary>
    internal long Lookups => Interlocked.Read(ref _lookups);

    private async Task<ApiKeyInfo?> LookUpAsync(string presented, DateTimeOffset now)
    {
        var parts = presented.Split('_', 3);

        // Ids are 16 lowercase hex digits: anything else is unknown without asking the store.
        if (parts.Length != 3 || parts[0] != "ms" || parts[1].Length != 16 || !parts[1].All(c => char.IsAsciiHexDigitLower(c) || char.IsAsciiDigit(c)))
        {
            return null;
        }

        if (_unknown.TryGetValue(parts[1], out var missedAt) && now - missedAt < CacheFor)
        {
            return null;
        }

        Interlocked.Increment(ref _lookups);
        var rows = await QueryAsync("SELECT id, name, scopes, created_at, expires_at, revoked_at, salt, hash, requests_per_second FROM api_keys WHERE id = @id;", ("@id", parts[1])).ConfigureAwait(false);
        if (rows.Count == 0)
        {
            if (_unknown.Count >= CacheLimit)
            {
                _unknown.Clear();
            }

            _unknown[parts[1]] = now;
            return null;
        }

        var (info, salt, hash) = rows[0];
        var genuine = CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Hash(Convert.FromBase64String(salt), parts[2])), Encoding.ASCII.GetBytes(hash));
        return genuine && info.RevokedAt is null && (info.ExpiresAt is null || info.ExpiresAt > now) ? info : null;
    }

    public async Task<IReadOnlyList<ApiKeyInfo>> ListAsync() =>
        (await QueryAsync("SELECT id, name, scopes, created_at, expires_at, revoked_at, salt, hash, requests_per_second FROM api_keys ORDER BY created_at, " + (_database.Provider == StoreProvider.Sqlite ? "rowid" : "seq") + ";").ConfigureAwait(false)).Select(r => r.Info).ToList();

    public Task RevokeAsync(string name) =>
        UpdateAsync("UPDATE api_keys SET revoked_at = @t WHERE name = @n AND revoked_at IS NULL;", name);

    public Task ExpireAsync(string name) =>
        UpdateAsync("UPDATE api_keys SET expires_at = @t WHERE name = @n;", name);

    private async Task UpdateAsync(string sql, string name)
    {
        if (await ExecuteAsync(sql, ("@t", _time.GetUtcNow().ToUnixTimeMilliseconds()), ("@n", name)).ConfigureAwait(false) == 0)
        {
            throw new ArgumentException($"no active key named '{name}'");
        }

        // Forget every remembered key: the next request re-reads the store.
        Forget();
    }

    /// <summary>A JSON array: what was checked and answered is what is stored, one element per scope, with nothing to split.</summary>
    private static string WriteScopes(IReadOnlyList<string> scopes) =>
        System.Text.Json.JsonSerializer.Serialize(scopes);

    /// <summary>
    /// Rows written before the JSON format hold scopes joined by spaces. Either way each scope is
    /// checked again: one that fails the grammar (an edited row, an older rule) is dropped and grants nothing.
    /// </summary>
    private static string[] ReadScopes(string stored)
    {
        string[] scopes;
        if (stored.StartsWith('['))
        {
            try
            {
                scopes = System.Text.Json.JsonSerializer.Deserialize<string[]>(stored) ?? [];
            }
            catch (System.Text.Json.JsonException)
            {
                return [];
            }
        }
        else
        {
            scopes = stored.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        }

        return Array.FindAll(scopes, Scopes.IsValid);
    }

    private static string Hash(byte[] salt, string secret) =>
        Convert.ToHexStringLower(SHA256.HashData([.. salt, .. Encoding.UTF8.GetBytes(secret)]));

    /// <summary>One statement in a transaction; its change is announced to every replica.</summary>
    private Task<int> ExecuteAsync(string sql, params (string Name, object? Value)[] parameters) =>
        _database.WriteAsync(async session =>
        {
            session.Changed(ChangeTopic);
            return await session.ExecuteAsync(sql, CancellationToken.None, parameters).ConfigureAwait(false);
        });

    private async Task<List<(ApiKeyInfo Info, string Salt, string Hash)>> QueryAsync(string sql, params (string Name, object? Value)[] parameters) =>
        [.. await _database.QueryAsync(sql, reader =>
        {
            DateTimeOffset? Ms(int i) => reader.IsDBNull(i) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(i));
            return (new ApiKeyInfo(reader.GetString(0), reader.GetString(1), ReadScopes(reader.GetString(2)),
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3)), Ms(4), Ms(5), reader.IsDBNull(8) ? null : reader.GetInt32(8)), reader.GetString(6), reader.GetString(7));
        }, CancellationToken.None, parameters).ConfigureAwait(false)];
}
