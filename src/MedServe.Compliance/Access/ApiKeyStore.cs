using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Data.Sqlite;

namespace MedServe.Compliance.Access;

/// <summary>What an API key may do; the secret itself is never stored.</summary>
public sealed record ApiKeyInfo(string Id, string Name, IReadOnlyList<string> Scopes, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt, DateTimeOffset? RevokedAt);

/// <summary>A key as handed out once: <c>ms_&lt;id&gt;_&lt;secret&gt;</c>.</summary>
public sealed record CreatedApiKey(ApiKeyInfo Info, string Key);

/// <summary>
/// API keys: 256-bit random secrets shown once; only a salted SHA-256 is stored (a slow hash adds
/// nothing for secrets this long). Keys can be listed without secrets, expired and revoked.
/// </summary>
public sealed class ApiKeyStore
{
    public static readonly string[] KnownScopes = ["infer", "models:read", "models:write", "audit:read", "admin"];

    private readonly string _connectionString;
    private readonly TimeProvider _time;

    private ApiKeyStore(string path, TimeProvider time)
    {
        _connectionString = new SqliteConnectionStringBuilder { DataSource = path }.ToString();
        _time = time;
    }

    public static async Task<ApiKeyStore> OpenAsync(string path, TimeProvider time)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var store = new ApiKeyStore(path, time);
        await store.ExecuteAsync("""
            CREATE TABLE IF NOT EXISTS api_keys (
                id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, scopes TEXT NOT NULL, salt TEXT NOT NULL, hash TEXT NOT NULL,
                created_at BIGINT NOT NULL, expires_at BIGINT, revoked_at BIGINT);
            """).ConfigureAwait(false);
        return store;
    }

    /// <summary>Creates a key; scopes are checked (<c>infer:&lt;model&gt;</c> limits inference to one model).</summary>
    public async Task<CreatedApiKey> CreateAsync(string name, IReadOnlyList<string> scopes, TimeSpan? lifetime = null)
    {
        foreach (var scope in scopes)
        {
            if (!KnownScopes.Contains(scope) && !(scope.StartsWith("infer:", StringComparison.Ordinal) && scope.Length > 6))
            {
                throw new ArgumentException($"unknown scope '{scope}'; scopes are {string.Join(", ", KnownScopes)} or infer:<model>");
            }
        }

        if (string.IsNullOrWhiteSpace(name))
        {
            throw new ArgumentException("a key needs a name");
        }

        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        var secret = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var salt = RandomNumberGenerator.GetBytes(16);
        var now = _time.GetUtcNow();
        var expires = lifetime is { } l ? now + l : (DateTimeOffset?)null;
        try
        {
            await ExecuteAsync("INSERT INTO api_keys (id, name, scopes, salt, hash, created_at, expires_at) VALUES ($id, $n, $s, $salt, $h, $c, $e);",
                ("$id", id), ("$n", name), ("$s", string.Join(' ', scopes)), ("$salt", Convert.ToBase64String(salt)), ("$h", Hash(salt, secret)),
                ("$c", now.ToUnixTimeMilliseconds()), ("$e", expires?.ToUnixTimeMilliseconds())).ConfigureAwait(false);
        }
        catch (SqliteException e) when (e.SqliteErrorCode == 19)
        {
            throw new ArgumentException($"a key named '{name}' already exists");
        }

        return new CreatedApiKey(new ApiKeyInfo(id, name, scopes, now, expires, null), $"ms_{id}_{secret}");
    }

    /// <summary>The key's identity when it is genuine, unexpired and unrevoked; null otherwise.</summary>
    public async Task<ApiKeyInfo?> AuthenticateAsync(string presented)
    {
        var parts = presented.Split('_', 3);
        if (parts.Length != 3 || parts[0] != "ms")
        {
            return null;
        }

        var rows = await QueryAsync("SELECT id, name, scopes, created_at, expires_at, revoked_at, salt, hash FROM api_keys WHERE id = $id;", ("$id", parts[1])).ConfigureAwait(false);
        if (rows.Count == 0)
        {
            return null;
        }

        var (info, salt, hash) = rows[0];
        var genuine = CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Hash(Convert.FromBase64String(salt), parts[2])), Encoding.ASCII.GetBytes(hash));
        var now = _time.GetUtcNow();
        return genuine && info.RevokedAt is null && (info.ExpiresAt is null || info.ExpiresAt > now) ? info : null;
    }

    public async Task<IReadOnlyList<ApiKeyInfo>> ListAsync() =>
        (await QueryAsync("SELECT id, name, scopes, created_at, expires_at, revoked_at, salt, hash FROM api_keys ORDER BY created_at, rowid;").ConfigureAwait(false)).Select(r => r.Info).ToList();

    public Task RevokeAsync(string name) =>
        UpdateAsync("UPDATE api_keys SET revoked_at = $t WHERE name = $n AND revoked_at IS NULL;", name);

    public Task ExpireAsync(string name) =>
        UpdateAsync("UPDATE api_keys SET expires_at = $t WHERE name = $n;", name);

    private async Task UpdateAsync(string sql, string name)
    {
        if (await ExecuteAsync(sql, ("$t", _time.GetUtcNow().ToUnixTimeMilliseconds()), ("$n", name)).ConfigureAwait(false) == 0)
        {
            throw new ArgumentException($"no active key named '{name}'");
        }
    }

    private static string Hash(byte[] salt, string secret) =>
        Convert.ToHexStringLower(SHA256.HashData([.. salt, .. Encoding.UTF8.GetBytes(secret)]));

    private async Task<int> ExecuteAsync(string sql, params (string Name, object? Value)[] parameters)
    {
        await using var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync().ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (n, v) in parameters)
        {
            command.Parameters.AddWithValue(n, v ?? DBNull.Value);
        }

        return await command.ExecuteNonQueryAsync().ConfigureAwait(false);
    }

    private async Task<List<(ApiKeyInfo Info, string Salt, string Hash)>> QueryAsync(string sql, params (string Name, object? Value)[] parameters)
    {
        await using var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync().ConfigureAwait(false);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (n, v) in parameters)
        {
            command.Parameters.AddWithValue(n, v ?? DBNull.Value);
        }

        await using var reader = await command.ExecuteReaderAsync().ConfigureAwait(false);
        var rows = new List<(ApiKeyInfo, string, string)>();
        while (await reader.ReadAsync().ConfigureAwait(false))
        {
            DateTimeOffset? Ms(int i) => reader.IsDBNull(i) ? null : DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(i));
            rows.Add((new ApiKeyInfo(reader.GetString(0), reader.GetString(1), reader.GetString(2).Split(' ', StringSplitOptions.RemoveEmptyEntries),
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(3)), Ms(4), Ms(5)), reader.GetString(6), reader.GetString(7)));
        }

        return rows;
    }
}
