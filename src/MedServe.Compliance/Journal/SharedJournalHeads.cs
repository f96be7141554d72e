using System.Globalization;
using MedServe.Storage;
using Npgsql;

namespace MedServe.Compliance.Journal;

/// <summary>One replica's journal head as it last published it: an anchor kept beyond that replica's disks.</summary>
public sealed record PublishedHead(string Replica, string PublicKey, JournalHead Head, DateTimeOffset PublishedAt);

/// <summary>
/// Every replica's journal head, in the PostgreSQL the replicas share. Each journal stays on its
/// replica's disk; its head (record, hash, and the last signed checkpoint) is copied here every few
/// seconds, so an auditor learns from one place which replicas exist and how far each chain must
/// reach: a replica left out of an audit, or one whose last records were deleted together with
/// its local anchor, is caught. The signature is checked against the auditor's pinned key, so this
/// table is one more copy of the anchor, not a trusted source.
/// </summary>
public sealed class SharedJournalHeads(Database database)
{
    private const string Table = "journal_heads";

    private static readonly Migration[] Migrations =
    [
        new("""
            CREATE TABLE journal_heads (
                replica TEXT PRIMARY KEY,
                public_key TEXT NOT NULL,
                sequence BIGINT NOT NULL,
                hash TEXT NOT NULL,
                checkpoint_sequence BIGINT NOT NULL,
                checkpoint_hash TEXT NOT NULL,
                signature TEXT NOT NULL,
                published_at TIMESTAMPTZ NOT NULL);
            """),
    ];

    public static async Task<SharedJournalHeads> OpenAsync(Database database, TimeProvider time, CancellationToken cancellationToken = default)
    {
        await database.MigrateAsync("journal_heads_migrations", Migrations, time, cancellationToken).ConfigureAwait(false);
        return new SharedJournalHeads(database);
    }

    /// <summary>Records <paramref name="head"/> for <paramref name="replica"/>; a head behind the one already published is ignored (heads only move forward).</summary>
    public Task PublishAsync(string replica, string publicKey, JournalHead head, DateTimeOffset now, CancellationToken cancellationToken = default) =>
        database.ReadAsync(session => session.ExecuteAsync($"""
            INSERT INTO {Table} (replica, public_key, sequence, hash, checkpoint_sequence, checkpoint_hash, signature, published_at)
            VALUES (@replica, @key, @sequence, @hash, @cseq, @chash, @signature, @at)
            ON CONFLICT (replica) DO UPDATE SET public_key = excluded.public_key, sequence = excluded.sequence, hash = excluded.hash,
                checkpoint_sequence = excluded.checkpoint_sequence, checkpoint_hash = excluded.checkpoint_hash,
                signature = excluded.signature, published_at = excluded.published_at
            WHERE {Table}.sequence <= excluded.sequence;
            """, cancellationToken,
            ("@replica", replica), ("@key", publicKey), ("@sequence", head.Sequence), ("@hash", Convert.ToHexStringLower(head.Hash)),
            ("@cseq", head.CheckpointSequence), ("@chash", Convert.ToHexStringLower(head.CheckpointHash)),
            ("@signature", Convert.ToBase64String(head.Signature)), ("@at", now)), cancellationToken);

    /// <summary>
    /// Every published head, read in a read-only transaction (an auditor's tool writes nothing,
    /// not even a migration). Empty when no replica ever published.
    /// </summary>
    public static async Task<IReadOnlyList<PublishedHead>> ReadAllAsync(string connectionString, CancellationToken cancellationToken = default)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (var readOnly = new NpgsqlCommand("SET TRANSACTION READ ONLY;", connection, transaction))
        {
            await readOnly.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await using (var exists = new NpgsqlCommand($"SELECT to_regclass('{Table}') IS NOT NULL;", connection, transaction))
        {
            if (await exists.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is not true)
            {
                return [];
            }
        }

        var heads = new List<PublishedHead>();
        await using var select = new NpgsqlCommand(
            $"SELECT replica, public_key, sequence, hash, checkpoint_sequence, checkpoint_hash, signature, published_at FROM {Table} ORDER BY replica;",
            connection, transaction);
        await using var reader = await select.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var head = new JournalHead(reader.GetInt64(2), Convert.FromHexString(reader.GetString(3)), reader.GetInt64(4),
                Convert.FromHexString(reader.GetString(5)), Convert.FromBase64String(reader.GetString(6)));
            heads.Add(new PublishedHead(reader.GetString(0), reader.GetString(1), head,
                new DateTimeOffset(reader.GetDateTime(7).ToUniversalTime(), TimeSpan.Zero)));
        }

        return heads;
    }

    /// <summary>A published head as the server logs one, for messages.</summary>
    public static string Describe(PublishedHead published) =>
        string.Create(CultureInfo.InvariantCulture, $"record {published.Head.Sequence}, published {published.PublishedAt:yyyy-MM-ddTHH:mm:ssZ}");
}
