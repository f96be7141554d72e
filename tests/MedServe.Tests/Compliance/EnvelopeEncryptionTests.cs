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
