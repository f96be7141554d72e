using System.Collections.Concurrent;

namespace MedServe.Storage;

/// <summary>
/// The databases the stores use, chosen by <see cref="StoreOptions.Provider"/>: with SQLite one
/// file per store family in the data dir (registry.db, keys.db, alerts.db, drift.db,
/// predictions.db); with PostgreSQL one shared database for all of them (their tables do not
/// collide). Every database announces its changes on the one <see cref="ChangeFeed"/>.
/// </summary>
public sealed class StoreDatabases(StoreOptions options, string dataDir, ChangeFeed changes, TimeProvider time) : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<Database>> _files = new(StringComparer.Ordinal);
    private readonly Lazy<Database> _shared = new(() => Open(options, changes, time));

    public StoreProvider Provider => options.Provider;

    public ChangeFeed Changes => changes;

    /// <summary>The database for the store family that SQLite keeps in <paramref name="file"/>.</summary>
    public Database For(string file) =>
        options.Provider == StoreProvider.Postgres
            ? _shared.Value
            : _files.GetOrAdd(file, f => new Lazy<Database>(() => Sqlite(Path.Combine(dataDir, f), changes))).Value;

    /// <summary>The database that holds the change counters and the leader locks: PostgreSQL's, or the registry's file.</summary>
    public Database Coordination => For("registry.db");

    private static Database Sqlite(string path, ChangeFeed changes)
    {
        var database = Database.OpenSqlite(path);
        database.Changes = changes;
        return database;
    }

    private static Database Open(StoreOptions options, ChangeFeed changes, TimeProvider time)
    {
        var database = Database.OpenPostgresAsync(options.ConnectionString!, time).GetAwaiter().GetResult();
        database.Changes = changes;
        return database;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var file in _files.Values.Where(f => f.IsValueCreated))
        {
            await file.Value.DisposeAsync().ConfigureAwait(false);
        }

        if (_shared.IsValueCreated)
        {
            await _shared.Value.DisposeAsync().ConfigureAwait(false);
        }
    }
}
