using System.Data.Common;
using System.Globalization;
using MedServe.Storage;

namespace MedServe.Registry.Store;

/// <summary>
/// The registry's records in a <see cref="Database"/>: an embedded SQLite file by default, or
/// the PostgreSQL database replicas share. The schema evolves by numbered migrations recorded
/// in <c>schema_migrations</c>, in both dialects. Alias and monitoring changes are announced on
/// the change feed's <see cref="ChangeTopic"/> topic so every replica reconciles.
/// </summary>
public sealed class RegistryStore : IRegistryStore
{
    /// <summary>The change feed's topic for aliases, versions and monitoring specs.</summary>
    public const string ChangeTopic = "registry";

    // Foreign keys a rename updates child-first: deferrable in PostgreSQL (SQLite defers any by pragma).
    private const string ModelReference = "REFERENCES registered_models(name)";
    private const string DeferrableModelReference = "REFERENCES registered_models(name) DEFERRABLE INITIALLY IMMEDIATE";

    // Each entry runs once, in order. Append; never edit a released one.
    private static readonly Migration[] Migrations =
    [
        new(FirstSchema.Replace("@ref", ModelReference, StringComparison.Ordinal), FirstSchema.Replace("@ref", DeferrableModelReference, StringComparison.Ordinal)),
        new("""
            ALTER TABLE model_versions ADD COLUMN description TEXT NOT NULL DEFAULT '';
            ALTER TABLE model_versions ADD COLUMN stage TEXT NOT NULL DEFAULT 'None';
            """),
        new("ALTER TABLE model_versions ADD COLUMN unservable_reason TEXT NOT NULL DEFAULT '';"),
        new("""
            CREATE TABLE monitoring_specs (
                model TEXT NOT NULL,
                revision BIGINT NOT NULL,
                spec TEXT NOT NULL,
                changed_by TEXT NOT NULL,
                changed_at BIGINT NOT NULL,
                PRIMARY KEY (model, revision));
            """),
    ];

    private const string FirstSchema = """
        CREATE TABLE registered_models (
            name TEXT PRIMARY KEY,
            description TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL);
        CREATE TABLE model_versions (
            model TEXT NOT NULL @ref,
            version BIGINT NOT NULL,
            semantic_version TEXT NOT NULL,
            artifact_sha256 TEXT NOT NULL,
            source TEXT NOT NULL,
            signature TEXT NOT NULL,
            model_card TEXT NOT NULL,
            lineage TEXT NOT NULL,
            metrics TEXT NOT NULL,
            registered_by TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            PRIMARY KEY (model, version),
            UNIQUE (model, semantic_version));
        CREATE TABLE tags (
            model TEXT NOT NULL @ref,
            version BIGINT NOT NULL,
            tag_key TEXT NOT NULL,
            tag_value TEXT NOT NULL,
            PRIMARY KEY (model, version, tag_key));
        CREATE TABLE aliases (
            model TEXT NOT NULL @ref,
            alias TEXT NOT NULL,
            version BIGINT NOT NULL,
            PRIMARY KEY (model, alias));
        CREATE TABLE alias_history (
            model TEXT NOT NULL,
            alias TEXT NOT NULL,
            seq BIGINT NOT NULL,
            from_version BIGINT,
            to_version BIGINT,
            changed_by TEXT NOT NULL,
            reason TEXT NOT NULL,
            changed_at BIGINT NOT NULL,
            PRIMARY KEY (model, seq));
        """;

    private readonly Database _database;
    private readonly TimeProvider _time;

    private RegistryStore(Database database, TimeProvider time)
    {
        _database = database;
        _time = time;
    }

    /// <summary>Opens (creating if needed) an embedded registry file and brings its schema up to date.</summary>
    public static Task<RegistryStore> OpenAsync(string path, TimeProvider time, CancellationToken cancellationToken = default) =>
        OpenAsync(Database.OpenSqlite(path), time, cancellationToken);

    /// <summary>Brings the registry's schema in <paramref name="database"/> up to date.</summary>
    public static async Task<RegistryStore> OpenAsync(Database database, TimeProvider time, CancellationToken cancellationToken = default)
    {
        try
        {
            await database.MigrateAsync("schema_migrations", Migrations, time, cancellationToken).ConfigureAwait(false);
        }
        catch (StoreException e)
        {
            // Written by a newer MedServe: this one would misread what it does not know, so it stops.
            throw new RegistryException(RegistryError.Invalid, "the registry's " + e.Message);
        }

        return new RegistryStore(database, time);
    }

    /// <summary>The number of schema migrations applied.</summary>
    public Task<long> SchemaVersionAsync(CancellationToken cancellationToken = default) => _database.SchemaVersionAsync("schema_migrations", cancellationToken);

    public Task<RegisteredModel> CreateModelAsync(string name, string description, CancellationToken cancellationToken = default) =>
        WriteAsync(async session =>
        {
            if (await Exists(session, name, cancellationToken).ConfigureAwait(false))
            {
                throw new RegistryException(RegistryError.AlreadyExists, $"registered model '{name}' already exists");
            }

            var now = Now();
            await session.ExecuteAsync("INSERT INTO registered_models (name, description, created_at, updated_at) VALUES (@n, @d, @t, @t);", cancellationToken,
                ("@n", name), ("@d", description), ("@t", now)).ConfigureAwait(false);
            return new RegisteredModel(name, description, FromMs(now), FromMs(now));
        }, cancellationToken);

    public async Task<RegisteredModel?> GetModelAsync(string name, CancellationToken cancellationToken = default)
    {
        var models = await Query(
            "SELECT name, description, created_at, updated_at FROM registered_models WHERE name = @n;",
            ReadModel, cancellationToken, ("@n", name)).ConfigureAwait(false);
        return models.Count == 0 ? null : models[0];
    }

    public Task<IReadOnlyList<RegisteredModel>> ListModelsAsync(CancellationToken cancellationToken = default) =>
        Query("SELECT name, description, created_at, updated_at FROM registered_models ORDER BY name;", ReadModel, cancellationToken);

    public Task<ModelVersionRecord> AddVersionAsync(NewModelVersion v, CancellationToken cancellationToken = default) =>
        WriteAsync(async session =>
        {
            await RequireModel(session, v.Model, cancellationToken).ConfigureAwait(false);
            var taken = await session.ScalarAsync("SELECT version FROM model_versions WHERE model = @m AND semantic_version = @s;", cancellationToken,
                ("@m", v.Model), ("@s", v.SemanticVersion)).ConfigureAwait(false);
            if (taken is not null)
            {
                throw new RegistryException(RegistryError.AlreadyExists, $"model '{v.Model}' already has version {v.SemanticVersion} (version {taken})");
            }

            if (v.CheckedAgainst is { } checkedAgainst)
            {
                var newest = Convert.ToInt64(await session.ScalarAsync("SELECT COALESCE(MAX(version), 0) FROM model_versions WHERE model = @m AND unservable_reason = '';", cancellationToken,
                    ("@m", v.Model)).ConfigureAwait(false), CultureInfo.InvariantCulture);
                if (newest != checkedAgainst)
                {
                    throw new RegistryConcurrencyException($"model '{v.Model}' gained version {newest} while version {v.SemanticVersion} was being checked against version {checkedAgainst}");
                }
            }

            var next = Convert.ToInt64(await session.ScalarAsync("SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE model = @m;", cancellationToken,
                ("@m", v.Model)).ConfigureAwait(false), CultureInfo.InvariantCulture);
            var now = Now();
            await session.ExecuteAsync("""
                INSERT INTO model_versions (model, version, semantic_version, artifact_sha256, source, signature, model_card, lineage, metrics, registered_by, created_at, unservable_reason)
                VALUES (@m, @v, @s, @a, @src, @sig, @card, @lin, @met, @by, @t, @why);
                """, cancellationToken,
                ("@m", v.Model), ("@v", next), ("@s", v.SemanticVersion.Length > 0 ? v.SemanticVersion : $"unservable.{next}"), ("@a", v.ArtifactSha256), ("@src", v.Source), ("@sig", v.SignatureJson),
                ("@card", v.ModelCardJson), ("@lin", v.LineageJson), ("@met", v.MetricsJson), ("@by", v.RegisteredBy), ("@t", now), ("@why", v.UnservableReason)).ConfigureAwait(false);
            await session.ExecuteAsync("UPDATE registered_models SET updated_at = @t WHERE name = @m;", cancellationToken, ("@t", now), ("@m", v.Model)).ConfigureAwait(false);
            return new ModelVersionRecord(v.Model, next, v.SemanticVersion.Length > 0 ? v.SemanticVersion : $"unservable.{next}", v.ArtifactSha256, v.Source, v.SignatureJson, v.ModelCardJson, v.LineageJson, v.MetricsJson, v.RegisteredBy, FromMs(now))
            {
                UnservableReason = v.UnservableReason,
            };
        }, cancellationToken);

    public async Task<ModelVersionRecord?> GetVersionAsync(string model, long version, CancellationToken cancellationToken = default)
    {
        var versions = await Query(VersionSelect + " WHERE model = @m AND version = @v;", ReadVersion, cancellationToken, ("@m", model), ("@v", version)).ConfigureAwait(false);
        return versions.Count == 0 ? null : versions[0];
    }

    public Task<IReadOnlyList<ModelVersionRecord>> ListVersionsAsync(string model, CancellationToken cancellationToken = default) =>
        Query(VersionSelect + " WHERE model = @m ORDER BY version;", ReadVersion, cancellationToken, ("@m", model));

    public Task UpdateModelAsync(string name, string description, CancellationToken cancellationToken = default) =>
        WriteAsync(async session =>
        {
            await RequireModel(session, name, cancellationToken).ConfigureAwait(false);
            await session.ExecuteAsync("UPDATE registered_models SET description = @d, updated_at = @t WHERE name = @n;", cancellationToken,
                ("@d", description), ("@t", Now()), ("@n", name)).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    public Task RenameModelAsync(string name, string newName, CancellationToken cancellationToken = default) =>
        WriteAsync(async session =>
        {
            await RequireModel(session, name, cancellationToken).ConfigureAwait(false);
            await RequireNoAlias(session, name, "renamed", cancellationToken).ConfigureAwait(false);
            if (await Exists(session, newName, cancellationToken).ConfigureAwait(false))
            {
                throw new RegistryException(RegistryError.AlreadyExists, $"registered model '{newName}' already exists");
            }

            // Children first under deferred foreign keys, then the parent: one rename, checked at commit.
            await session.DeferForeignKeysAsync(cancellationToken).ConfigureAwait(false);
            foreach (var table in new[] { "model_versions", "tags", "aliases", "alias_history" })
            {
                await session.ExecuteAsync($"UPDATE {table} SET model = @new WHERE model = @old;", cancellationToken, ("@new", newName), ("@old", name)).ConfigureAwait(false);
            }

            await session.ExecuteAsync("UPDATE registered_models SET name = @new, updated_at = @t WHERE name = @old;", cancellationToken,
                ("@new", newName), ("@t", Now()), ("@old", name)).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    public Task DeleteModelAsync(string name, CancellationToken cancellationToken = default) =>
        WriteAsync(async session =>
        {
            await RequireModel(session, name, cancellationToken).ConfigureAwait(false);
            await RequireNoAlias(session, name, "deleted", cancellationToken).ConfigureAwait(false);
            // The alias history stays: it is part of the record of what served, even of a deleted model.
            foreach (var table in new[] { "tags", "model_versions" })
            {
                await session.ExecuteAsync($"DELETE FROM {table} WHERE model = @m;", cancellationToken, ("@m", name)).ConfigureAwait(false);
            }

            await session.ExecuteAsync("DELETE FROM registered_models WHERE name = @m;", cancellationToken, ("@m", name)).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    public Task UpdateVersionAsync(string model, long version, string? description, string? stage, CancellationToken cancellationToken = default) =>
        WriteAsync(async session =>
        {
            if (await session.ScalarAsync("SELECT 1 FROM model_versions WHERE model = @m AND version = @v;", cancellationToken, ("@m", model), ("@v", version)).ConfigureAwait(false) is null)
            {
                throw new RegistryException(RegistryError.NotFound, $"model '{model}' has no version {version}");
            }

            await session.ExecuteAsync("UPDATE model_versions SET description = COALESCE(@d, description), stage = COALESCE(@s, stage) WHERE model = @m AND version = @v;", cancellationToken,
                ("@d", description), ("@s", stage), ("@m", model), ("@v", version)).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    public Task DeleteTagAsync(string model, long? version, string key, CancellationToken cancellationToken = default) =>
        WriteAsync(async session =>
        {
            await RequireModel(session, model, cancellationToken).ConfigureAwait(false);
            await session.ExecuteAsync("DELETE FROM tags WHERE model = @m AND version = @v AND tag_key = @k;", cancellationToken,
                ("@m", model), ("@v", version ?? 0), ("@k", key)).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    private static async Task RequireNoAlias(DbSession session, string model, string what, CancellationToken cancellationToken)
    {
        if (await session.ScalarAsync("SELECT alias FROM aliases WHERE model = @m ORDER BY alias;", cancellationToken, ("@m", model)).ConfigureAwait(false) is string alias)
        {
            throw new RegistryException(RegistryError.Invalid, $"model '{model}' cannot be {what} while the alias '{alias}' names one of its versions; remove its aliases first");
        }
    }

    public Task DeleteVersionAsync(string model, long version, CancellationToken cancellationToken = default) =>
        WriteAsync(async session =>
        {
            if (await session.ScalarAsync("SELECT 1 FROM model_versions WHERE model = @m AND version = @v;", cancellationToken, ("@m", model), ("@v", version)).ConfigureAwait(false) is null)
            {
                throw new RegistryException(RegistryError.NotFound, $"model '{model}' has no version {version}");
            }

            if (await session.ScalarAsync("SELECT alias FROM aliases WHERE model = @m AND version = @v ORDER BY alias;", cancellationToken, ("@m", model), ("@v", version)).ConfigureAwait(false) is string alias)
            {
                throw new RegistryException(RegistryError.Invalid, $"model '{model}' version {version} is named by the alias '{alias}' and may be serving; move the alias first");
            }

            await session.ExecuteAsync("DELETE FROM tags WHERE model = @m AND version = @v;", cancellationToken, ("@m", model), ("@v", version)).ConfigureAwait(false);
            await session.ExecuteAsync("DELETE FROM model_versions WHERE model = @m AND version = @v;", cancellationToken, ("@m", model), ("@v", version)).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    public Task SetTagAsync(string model, long? version, string key, string value, CancellationToken cancellationToken = default) =>
        WriteAsync(async session =>
        {
            await RequireModel(session, model, cancellationToken).ConfigureAwait(false);
            await session.ExecuteAsync("DELETE FROM tags WHERE model = @m AND version = @v AND tag_key = @k;", cancellationToken,
                ("@m", model), ("@v", version ?? 0), ("@k", key)).ConfigureAwait(false);
            await session.ExecuteAsync("INSERT INTO tags (model, version, tag_key, tag_value) VALUES (@m, @v, @k, @val);", cancellationToken,
                ("@m", model), ("@v", version ?? 0), ("@k", key), ("@val", value)).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    public async Task<IReadOnlyDictionary<string, string>> GetTagsAsync(string model, long? version, CancellationToken cancellationToken = default)
    {
        var rows = await Query("SELECT tag_key, tag_value FROM tags WHERE model = @m AND version = @v ORDER BY tag_key;",
            r => KeyValuePair.Create(r.GetString(0), r.GetString(1)), cancellationToken, ("@m", model), ("@v", version ?? 0)).ConfigureAwait(false);
        return rows.ToDictionary(r => r.Key, r => r.Value, StringComparer.Ordinal);
    }

    public Task SetAliasAsync(string model, string alias, long? version, string changedBy, string reason, CancellationToken cancellationToken = default) =>
        WriteAsync(async session =>
        {
            await RequireModel(session, model, cancellationToken).ConfigureAwait(false);
            if (version is { } v && await session.ScalarAsync("SELECT 1 FROM model_versions WHERE model = @m AND version = @v;", cancellationToken, ("@m", model), ("@v", v)).ConfigureAwait(false) is null)
            {
                throw new RegistryException(RegistryError.NotFound, $"model '{model}' has no version {v}");
            }

            var previous = await session.ScalarAsync("SELECT version FROM aliases WHERE model = @m AND alias = @a;", cancellationToken, ("@m", model), ("@a", alias)).ConfigureAwait(false);
            await session.ExecuteAsync("DELETE FROM aliases WHERE model = @m AND alias = @a;", cancellationToken, ("@m", model), ("@a", alias)).ConfigureAwait(false);
            if (version is not null)
            {
                await session.ExecuteAsync("INSERT INTO aliases (model, alias, version) VALUES (@m, @a, @v);", cancellationToken, ("@m", model), ("@a", alias), ("@v", version)).ConfigureAwait(false);
            }

            var seq = Convert.ToInt64(await session.ScalarAsync("SELECT COALESCE(MAX(seq), 0) + 1 FROM alias_history WHERE model = @m;", cancellationToken, ("@m", model)).ConfigureAwait(false), CultureInfo.InvariantCulture);
            await session.ExecuteAsync("""
                INSERT INTO alias_history (model, alias, seq, from_version, to_version, changed_by, reason, changed_at)
                VALUES (@m, @a, @seq, @from, @to, @by, @why, @t);
                """, cancellationToken,
                ("@m", model), ("@a", alias), ("@seq", seq), ("@from", previous), ("@to", version), ("@by", changedBy), ("@why", reason), ("@t", Now())).ConfigureAwait(false);
            return true;
        }, cancellationToken);

    public async Task<IReadOnlyDictionary<string, long>> GetAliasesAsync(string model, CancellationToken cancellationToken = default)
    {
        var rows = await Query("SELECT alias, version FROM aliases WHERE model = @m ORDER BY alias;",
            r => KeyValuePair.Create(r.GetString(0), r.GetInt64(1)), cancellationToken, ("@m", model)).ConfigureAwait(false);
        return rows.ToDictionary(r => r.Key, r => r.Value, StringComparer.Ordinal);
    }

    public Task<IReadOnlyList<AliasChange>> GetAliasHistoryAsync(string model, CancellationToken cancellationToken = default) =>
        Query("SELECT model, alias, from_version, to_version, changed_by, reason, changed_at FROM alias_history WHERE model = @m ORDER BY seq;",
            r => new AliasChange(r.GetString(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetInt64(2), r.IsDBNull(3) ? null : r.GetInt64(3), r.GetString(4), r.GetString(5), FromMs(r.GetInt64(6))),
            cancellationToken, ("@m", model));

    public Task<MonitoringRevision> SetMonitoringAsync(string model, string spec, string changedBy, CancellationToken cancellationToken = default) =>
        WriteAsync(async session =>
        {
            await RequireModel(session, model, cancellationToken).ConfigureAwait(false);
            var revision = Convert.ToInt64(await session.ScalarAsync("SELECT COALESCE(MAX(revision), 0) + 1 FROM monitoring_specs WHERE model = @m;", cancellationToken, ("@m", model)).ConfigureAwait(false), CultureInfo.InvariantCulture);
            var now = Now();
            await session.ExecuteAsync("INSERT INTO monitoring_specs (model, revision, spec, changed_by, changed_at) VALUES (@m, @r, @s, @by, @t);", cancellationToken,
                ("@m", model), ("@r", revision), ("@s", spec), ("@by", changedBy), ("@t", now)).ConfigureAwait(false);
            return new MonitoringRevision(model, revision, spec, changedBy, FromMs(now));
        }, cancellationToken);

    public Task<IReadOnlyList<MonitoringRevision>> GetMonitoringHistoryAsync(string model, CancellationToken cancellationToken = default) =>
        Query("SELECT model, revision, spec, changed_by, changed_at FROM monitoring_specs WHERE model = @m ORDER BY revision;",
            r => new MonitoringRevision(r.GetString(0), r.GetInt64(1), r.GetString(2), r.GetString(3), FromMs(r.GetInt64(4))), cancellationToken, ("@m", model));

    private const string VersionSelect =
        "SELECT model, version, semantic_version, artifact_sha256, source, signature, model_card, lineage, metrics, registered_by, created_at, description, stage, unservable_reason FROM model_versions";

    private static ModelVersionRecord ReadVersion(DbDataReader r) => new(
        r.GetString(0), r.GetInt64(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetString(6), r.GetString(7), r.GetString(8), r.GetString(9), FromMs(r.GetInt64(10)))
    {
        Description = r.GetString(11),
        Stage = r.GetString(12),
        UnservableReason = r.GetString(13),
    };

    private static RegisteredModel ReadModel(DbDataReader r) => new(r.GetString(0), r.GetString(1), FromMs(r.GetInt64(2)), FromMs(r.GetInt64(3)));


    /// <summary>Every registry write is announced: other replicas reconcile what they serve against it.</summary>
    private Task<T> WriteAsync<T>(Func<DbSession, Task<T>> work, CancellationToken cancellationToken) =>
        _database.WriteAsync(async session =>
        {
            // One registry writer at a time across replicas, as in one SQLite file: versions and history are numbered MAX + 1.
            await session.LockAsync("registered_models", cancellationToken).ConfigureAwait(false);
            var result = await work(session).ConfigureAwait(false);
            session.Changed(ChangeTopic);
            return result;
        }, cancellationToken);

    private Task<IReadOnlyList<T>> Query<T>(string sql, Func<DbDataReader, T> read, CancellationToken cancellationToken, params (string Name, object? Value)[] parameters) =>
        _database.QueryAsync(sql, read, cancellationToken, parameters);

    private static async Task RequireModel(DbSession session, string name, CancellationToken cancellationToken)
    {
        if (!await Exists(session, name, cancellationToken).ConfigureAwait(false))
        {
            throw new RegistryException(RegistryError.NotFound, $"registered model '{name}' does not exist");
        }
    }

    private static async Task<bool> Exists(DbSession session, string name, CancellationToken cancellationToken) =>
        await session.ScalarAsync("SELECT 1 FROM registered_models WHERE name = @n;", cancellationToken, ("@n", name)).ConfigureAwait(false) is not null;

    private long Now() => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private static DateTimeOffset FromMs(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);
}
