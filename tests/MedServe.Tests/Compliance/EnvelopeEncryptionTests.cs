using System.Security.Cryptography;
using System.Text;
using MedServe.Compliance.Encryption;

namespace MedServe.Tests.Compliance;

public sealed class EnvelopeEncryptionTests
{
    private static readonly string KeyA = "a:" + Convert.ToBase64String(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray());
    private static readonly string KeyB = "b:" + Convert.ToBase64String(Enumerable.Range(100, 32).Select(i => (byte)i).ToArray());
    private static readonly byte[] Record = Encoding.UTF8.GetBytes("MRN 0012345, lactate 4.1");

    [Fact]
    public void Round_trip_with_associated_data_and_nothing_readable_in_the_envelope()
    {
        var crypto = new EnvelopeEncryption(MasterKeyRing.Parse(KeyA));

        var envelope = crypto.Encrypt(Record, "prediction/42"u8);

        Assert.Equal(Record, crypto.Decrypt(envelope, "prediction/42"u8));
        Assert.DoesNotContain("0012345", Encoding.UTF8.GetString(envelope), StringComparison.Ordinal);
        Assert.Equal("a", EnvelopeEncryption.KeyId(envelope));
        Assert.NotEqual(envelope, crypto.Encrypt(Record, "prediction/42"u8)); // a fresh data key and nonce each time
    }

    [Fact]
    public async Task Record_envelopes_share_a_thread_data_key_with_unique_nonces_and_read_as_any_envelope()
    {
        var crypto = new EnvelopeEncryption(MasterKeyRing.Parse(KeyA));
        var envelopes = Enumerable.Range(0, 1000).Select(i => crypto.EncryptRecord(Record, Encoding.UTF8.GetBytes($"req-{i}"))).ToList();

        for (var i = 0; i < envelopes.Count; i++)
        {
            Assert.Equal(Record, crypto.Decrypt(envelopes[i], Encoding.UTF8.GetBytes($"req-{i}")));
        }

        Assert.Throws<CryptographicException>(() => crypto.Decrypt(envelopes[1], "req-0"u8));

        // Layout: version | id length | id "a" | wrap nonce 12 | wrapped key 32 | wrap tag 16 | nonce 12 | tag 16 | ciphertext.
        const int header = 2 + 1 + 12 + 32 + 16;
        Assert.Single(envelopes.Select(e => Convert.ToHexString(e, 0, header)).Distinct());
        Assert.Equal(envelopes.Count, envelopes.Select(e => Convert.ToHexString(e, header, 12)).Distinct().Count());

        // Another thread draws its own data key; rotation re-wraps a record envelope as any other.
        var other = await Task.Factory.StartNew(() => crypto.EncryptRecord(Record), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        Assert.NotEqual(Convert.ToHexString(other, 0, header), Convert.ToHexString(envelopes[0], 0, header));
        var rotated = new EnvelopeEncryption(MasterKeyRing.Parse(KeyA + "\n" + KeyB));
        var rewrapped = rotated.Rewrap(envelopes[5]);
        Assert.Equal("b", EnvelopeEncryption.KeyId(rewrapped));
        Assert.Equal(Record, rotated.Decrypt(rewrapped, "req-5"u8));
        Assert.Equal("b", EnvelopeEncryption.KeyId(rotated.EncryptRecord(Record)));
    }

    [Fact]
    public void Tampering_or_other_associated_data_fails_authentication()
    {
        var crypto = new EnvelopeEncryption(MasterKeyRing.Parse(KeyA));
        var envelope = crypto.Encrypt(Record, "prediction/42"u8);
        var tampered = (byte[])envelope.Clone();
        tampered[^1] ^= 1;

        Assert.Contains("does not authenticate", Assert.Throws<CryptographicException>(() => crypto.Decrypt(tampered, "prediction/42"u8)).Message);
        Assert.Throws<CryptographicException>(() => crypto.Decrypt(envelope, "prediction/43"u8));
        Assert.Contains("truncated", Assert.Throws<CryptographicException>(() => crypto.Decrypt(envelope.AsSpan(0, 20))).Message);
    }

    [Fact]
    public void Rotation_keeps_old_envelopes_readable_and_rewraps_only_the_data_key()
    {
        var before = new EnvelopeEncryption(MasterKeyRing.Parse(KeyA));
        var old = before.Encrypt(Record);
        var after = new EnvelopeEncryption(MasterKeyRing.Parse(KeyA + "\n" + KeyB));

        Assert.Equal(Record, after.Decrypt(old));
        var rewrapped = after.Rewrap(old);

        Assert.Equal("b", EnvelopeEncryption.KeyId(rewrapped));
        Assert.Equal(old.AsSpan(old.Length - Record.Length - 28).ToArray(), rewrapped.AsSpan(rewrapped.Length - Record.Length - 28).ToArray());
        Assert.Equal(Record, new EnvelopeEncryption(MasterKeyRing.Parse(KeyB)).Decrypt(rewrapped));
        Assert.Contains("master key 'a' is not in the key ring", Assert.Throws<CryptographicException>(() => new EnvelopeEncryption(MasterKeyRing.Parse(KeyB)).Decrypt(old)).Message);
    }

    [Theory]
    [InlineData("", "no master key")]
    [InlineData("a:AAAA", "is 3 bytes; AES-256 needs 32")]
    [InlineData("a:not-base64!", "not valid base64")]
    [InlineData("justtext", "must read 'id:base64key'")]
    public void Bad_key_rings_are_refused_with_a_reason(string text, string message)
    {
        Assert.Contains(message, Assert.Throws<CryptographicException>(() => MasterKeyRing.Parse(text)).Message);
    }
}
