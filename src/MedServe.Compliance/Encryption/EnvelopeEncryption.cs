using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace MedServe.Compliance.Encryption;

/// <summary>
/// The master keys: 32-byte AES keys by id, one of them current. Read from a file or an
/// environment variable holding <c>id:base64key</c> entries (lines or ';'-separated); the last
/// entry is current, so rotation appends a key and keeps the old ones for reading.
/// </summary>
public sealed class MasterKeyRing
{
    private readonly Dictionary<string, byte[]> _keys;

    public MasterKeyRing(IEnumerable<(string Id, byte[] Key)> keys)
    {
        _keys = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var (id, key) in keys)
        {
            if (key.Length != 32)
            {
                throw new CryptographicException($"master key '{id}' is {key.Length} bytes; AES-256 needs 32");
            }

            if (id.Length is 0 or > 64 || id.Contains(':', StringComparison.Ordinal))
            {
                throw new CryptographicException($"master key id '{id}' must be 1 to 64 characters without ':'");
            }

            _keys[id] = key;
            CurrentId = id;
        }

        if (_keys.Count == 0)
        {
            throw new CryptographicException("no master key: give at least one 'id:base64key' entry");
        }
    }

    public string CurrentId { get; } = "";

    public static MasterKeyRing Parse(string text) => new(text
        .Split(['\n', ';'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
        .Where(line => !line.StartsWith('#'))
        .Select(line =>
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                throw new CryptographicException("a master key entry must read 'id:base64key'");
            }

            try
            {
                return (line[..colon], Convert.FromBase64String(line[(colon + 1)..]));
            }
            catch (FormatException)
            {
                throw new CryptographicException($"master key '{line[..colon]}' is not valid base64");
            }
        }));

    public byte[] Key(string id) =>
        _keys.TryGetValue(id, out var key) ? key : throw new CryptographicException($"master key '{id}' is not in the key ring; it was used to wrap this data");
}

/// <summary>
/// Envelope encryption for stored data that may hold patient information: each envelope has its
/// own AES-256-GCM data key, wrapped (also AES-256-GCM) by a master key whose id travels with the
/// data. Rotating the master key re-wraps 32-byte data keys (<see cref="Rewrap"/>), never the data.
/// Layout: version 1 | id length | id | wrap nonce 12 | wrapped key 32 | wrap tag 16 | nonce 12 | tag 16 | ciphertext.
/// </summary>
public sealed class EnvelopeEncryption(MasterKeyRing keys)
{
    private const byte Version = 1;
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private const int KeySize = 32;

    /// <param name="associatedData">Bound to the ciphertext (a record id, say): decrypting with other associated data fails.</param>
    public byte[] Encrypt(ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData = default)
    {
        Span<byte> dataKey = stackalloc byte[KeySize];
        RandomNumberGenerator.Fill(dataKey);
        try
        {
            var id = Encoding.UTF8.GetBytes(keys.CurrentId);
            var header = 2 + id.Length + NonceSize + KeySize + TagSize;
            var envelope = new byte[header + NonceSize + TagSize + plaintext.Length];
            envelope[0] = Version;
            envelope[1] = (byte)id.Length;
            id.CopyTo(envelope, 2);
            Wrap(keys.Key(keys.CurrentId), dataKey, envelope.AsSpan(2 + id.Length, NonceSize + KeySize + TagSize));

            var nonce = envelope.AsSpan(header, NonceSize);
            RandomNumberGenerator.Fill(nonce);
            using var aes = new AesGcm(dataKey, TagSize);
            aes.Encrypt(nonce, plaintext, envelope.AsSpan(header + NonceSize + TagSize), envelope.AsSpan(header + NonceSize, TagSize), associatedData);
            return envelope;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
        }
    }

    public byte[] Decrypt(ReadOnlySpan<byte> envelope, ReadOnlySpan<byte> associatedData = default)
    {
        var (id, wrappedAt, bodyAt) = Split(envelope);
        var wrapped = envelope.Slice(wrappedAt, NonceSize + KeySize + TagSize);
        var body = envelope[bodyAt..];
        Span<byte> dataKey = stackalloc byte[KeySize];
        try
        {
            Unwrap(keys.Key(id), wrapped, dataKey);
            var plaintext = new byte[body.Length - NonceSize - TagSize];
            using var aes = new AesGcm(dataKey, TagSize);
            aes.Decrypt(body[..NonceSize], body[(NonceSize + TagSize)..], body.Slice(NonceSize, TagSize), plaintext, associatedData);
            return plaintext;
        }
        catch (AuthenticationTagMismatchException)
        {
            throw new CryptographicException("the envelope was modified, or its associated data differs: it does not authenticate");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
        }
    }

    /// <summary>
    /// Encrypts a small record at a high rate (the journal's payloads): the same envelope format, so
    /// <see cref="Decrypt"/> and <see cref="Rewrap"/> read it as any other, but the data key is kept
    /// by the calling thread for up to <see cref="RecordKeyUses"/> envelopes or <see cref="RecordKeyLifetime"/>,
    /// with a nonce of a random prefix and a counter (unique under that key, as GCM needs). The
    /// per-envelope key costs two cipher setups and three random draws, most of the cost of a
    /// record; measured in docs/performance.md.
    /// </summary>
    public byte[] EncryptRecord(ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData = default)
    {
        var key = _recordKey;
        var now = Environment.TickCount64;
        if (key is null || key.Owner != this || key.MasterId != keys.CurrentId || key.Uses >= RecordKeyUses || now - key.Created > (long)RecordKeyLifetime.TotalMilliseconds)
        {
            key?.Dispose();
            key = _recordKey = RecordKey.Create(this, keys.CurrentId, keys.Key(keys.CurrentId), now);
        }

        var header = key.Header.Length;
        var envelope = new byte[header + NonceSize + TagSize + plaintext.Length];
        key.Header.CopyTo(envelope, 0);
        var nonce = envelope.AsSpan(header, NonceSize);
        key.Prefix.CopyTo(nonce);
        BinaryPrimitives.WriteInt64LittleEndian(nonce[4..], ++key.Uses);
        key.Aes.Encrypt(nonce, plaintext, envelope.AsSpan(header + NonceSize + TagSize), envelope.AsSpan(header + NonceSize, TagSize), associatedData);
        return envelope;
    }

    /// <summary>Envelopes one thread encrypts under one data key before it draws a new one.</summary>
    public const long RecordKeyUses = 1 << 20;

    /// <summary>How long one thread keeps one data key.</summary>
    public static readonly TimeSpan RecordKeyLifetime = TimeSpan.FromMinutes(5);

    [ThreadStatic]
    private static RecordKey? _recordKey;

    /// <summary>A thread's current data key: its cipher, its wrapped form (the envelope header), a nonce prefix and a count.</summary>
    private sealed class RecordKey : IDisposable
    {
        private RecordKey(EnvelopeEncryption owner, string masterId, long created, AesGcm aes, byte[] header, byte[] prefix)
        {
            Owner = owner;
            MasterId = masterId;
            Created = created;
            Aes = aes;
            Header = header;
            Prefix = prefix;
        }

        public EnvelopeEncryption Owner { get; }

        public string MasterId { get; }

        public long Created { get; }

        public AesGcm Aes { get; }

        public byte[] Header { get; }

        public byte[] Prefix { get; }

        public long Uses { get; set; }

        public static RecordKey Create(EnvelopeEncryption owner, string masterId, byte[] masterKey, long now)
        {
            Span<byte> dataKey = stackalloc byte[KeySize];
            RandomNumberGenerator.Fill(dataKey);
            try
            {
                var id = Encoding.UTF8.GetBytes(masterId);
                var header = new byte[2 + id.Length + NonceSize + KeySize + TagSize];
                header[0] = Version;
                header[1] = (byte)id.Length;
                id.CopyTo(header, 2);
                Wrap(masterKey, dataKey, header.AsSpan(2 + id.Length));
                return new RecordKey(owner, masterId, now, new AesGcm(dataKey, TagSize), header, RandomNumberGenerator.GetBytes(4));
            }
            finally
            {
                CryptographicOperations.ZeroMemory(dataKey);
            }
        }

        public void Dispose() => Aes.Dispose();
    }

    /// <summary>The id of the master key an envelope's data key is wrapped with.</summary>
    public static string KeyId(ReadOnlySpan<byte> envelope) => Split(envelope).Id;

    /// <summary>Re-wraps the data key under the current master key; the encrypted data is copied as is.</summary>
    public byte[] Rewrap(ReadOnlySpan<byte> envelope)
    {
        var (id, wrappedAt, bodyAt) = Split(envelope);
        var wrapped = envelope.Slice(wrappedAt, NonceSize + KeySize + TagSize);
        var body = envelope[bodyAt..];
        Span<byte> dataKey = stackalloc byte[KeySize];
        try
        {
            Unwrap(keys.Key(id), wrapped, dataKey);
            var newId = Encoding.UTF8.GetBytes(keys.CurrentId);
            var header = 2 + newId.Length + NonceSize + KeySize + TagSize;
            var result = new byte[header + body.Length];
            result[0] = Version;
            result[1] = (byte)newId.Length;
            newId.CopyTo(result, 2);
            Wrap(keys.Key(keys.CurrentId), dataKey, result.AsSpan(2 + newId.Length, NonceSize + KeySize + TagSize));
            body.CopyTo(result.AsSpan(header));
            return result;
        }
        catch (AuthenticationTagMismatchException)
        {
            throw new CryptographicException("the envelope's wrapped data key does not authenticate");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
        }
    }

    /// <summary>The key id, and where the wrapped key and the encrypted body start.</summary>
    private static (string Id, int Wrapped, int Body) Split(ReadOnlySpan<byte> envelope)
    {
        if (envelope.Length < 2 || envelope[0] != Version)
        {
            throw new CryptographicException("not a MedServe envelope (unknown version byte)");
        }

        var idLength = envelope[1];
        var header = 2 + idLength + NonceSize + KeySize + TagSize;
        if (envelope.Length < header + NonceSize + TagSize)
        {
            throw new CryptographicException("the envelope is truncated");
        }

        return (Encoding.UTF8.GetString(envelope.Slice(2, idLength)), 2 + idLength, header);
    }

    private static void Wrap(byte[] masterKey, ReadOnlySpan<byte> dataKey, Span<byte> destination)
    {
        var nonce = destination[..NonceSize];
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(masterKey, TagSize);
        aes.Encrypt(nonce, dataKey, destination.Slice(NonceSize, KeySize), destination.Slice(NonceSize + KeySize, TagSize));
    }

    private static void Unwrap(byte[] masterKey, ReadOnlySpan<byte> wrapped, Span<byte> dataKey)
    {
        using var aes = new AesGcm(masterKey, TagSize);
        aes.Decrypt(wrapped[..NonceSize], wrapped.Slice(NonceSize, KeySize), wrapped.Slice(NonceSize + KeySize, TagSize), dataKey);
    }
}
