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
