using System.Security.Cryptography;
using MedServe.Compliance.Access;

namespace MedServe.Security;

/// <summary>
/// The secrets a data dir holds, each created on first start and readable by the owner only
/// (files 0600 in a 0700 folder): the admin key, the pseudonym secret and the audit signing key.
/// </summary>
public sealed class ServerSecrets(string dataDir)
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public string AdminKeyPath => Path.Combine(dataDir, "admin.key");

    public string SecretsDir => Path.Combine(dataDir, "secrets");

    public string AuditSigningKeyPath => Path.Combine(SecretsDir, "audit-signing.pem");

    /// <summary>The public half, for verifying a copied audit log without the private key.</summary>
    public string AuditVerifyingKeyPath => Path.Combine(SecretsDir, "audit-signing.pub.pem");

    public string PseudonymSecretPath => Path.Combine(SecretsDir, "pseudonym.key");

    public string MasterKeysPath => Path.Combine(SecretsDir, "master.keys");

    /// <summary>
    /// With no key in the store (an empty data dir), creates the admin key, writes it to admin.key and
    /// returns it, once. Returns null when keys exist already, or when the key came from
    /// <paramref name="adminKeyFile"/> (its owner has it; it is written nowhere else).
    /// </summary>
    /// <exception cref="InvalidOperationException">The file cannot be read or holds no key (the message never repeats its content).</exception>
    public async Task<string?> EnsureAdminKeyAsync(ApiKeyStore keys, string? adminKeyFile = null)
    {
        if ((await keys.ListAsync().ConfigureAwait(false)).Count > 0)
        {
            return null;
        }

        CreatedApiKey created;
        try
        {
            if (adminKeyFile is not null)
            {
                string given;
                try
                {
                    given = (await File.ReadAllTextAsync(adminKeyFile).ConfigureAwait(false)).Trim();
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw new InvalidOperationException($"Auth:AdminKeyFile cannot be read ({e.GetType().Name})");
                }

                try
                {
                    await keys.ImportAsync("admin", [Scopes.Admin], given).ConfigureAwait(false);
                }
                catch (ArgumentException e)
                {
                    throw new InvalidOperationException($"Auth:AdminKeyFile holds {e.Message}");
                }

                return null;
            }

            created = await keys.CreateAsync("admin", [Scopes.Admin]).ConfigureAwait(false);
        }
        catch (ApiKeyNameTakenException)
        {
            // Another replica sharing the store made it first, at the same moment.
            return null;
        }

        WriteOwnerOnly(AdminKeyPath, System.Text.Encoding.ASCII.GetBytes(created.Key + "\n"));
        return created.Key;
    }

    public byte[] PseudonymSecret()
    {
        if (!File.Exists(PseudonymSecretPath))
        {
            WriteOwnerOnly(PseudonymSecretPath, RandomNumberGenerator.GetBytes(32));
        }

        return File.ReadAllBytes(PseudonymSecretPath);
    }

    /// <summary>
    /// The master key ring for envelope encryption: from the configured file or entries, else a
    /// ring of one random key created in secrets/master.keys on first start.
    /// </summary>
    public MedServe.Compliance.Encryption.MasterKeyRing MasterKeys(EncryptionOptions options)
    {
        if (!string.IsNullOrWhiteSpace(options.MasterKeys))
        {
            return MedServe.Compliance.Encryption.MasterKeyRing.Parse(options.MasterKeys);
        }

        var path = options.MasterKeyFile ?? MasterKeysPath;
        if (options.MasterKeyFile is null && !File.Exists(path))
        {
            WriteOwnerOnly(path, System.Text.Encoding.ASCII.GetBytes($"k1:{Convert.ToBase64String(RandomNumberGenerator.GetBytes(32))}\n"));
        }

        try
        {
            return MedServe.Compliance.Encryption.MasterKeyRing.Parse(File.ReadAllText(path));
        }
        catch (IOException e)
        {
            throw new Microsoft.Extensions.Options.OptionsValidationException(Hosting.ServerOptions.Section, typeof(EncryptionOptions),
                [$"Encryption:MasterKeyFile: cannot read '{path}': {e.Message}"]);
        }
    }

    /// <summary>
    /// The key that signs journal checkpoints: from Journal:SigningKey (PEM text) or
    /// Journal:SigningKeyPath, both meant to live outside the data dir; else the key in
    /// secrets/ (created on first start), and <paramref name="insideDataDir"/> says so.
    /// </summary>
    public ECDsa JournalSigningKey(JournalSettings settings, out bool insideDataDir)
    {
        insideDataDir = false;
        if (!string.IsNullOrWhiteSpace(settings.SigningKey))
        {
            return ImportSigningKey(settings.SigningKey, "Journal:SigningKey");
        }

        if (!string.IsNullOrWhiteSpace(settings.SigningKeyPath))
        {
            string pem;
            try
            {
                pem = File.ReadAllText(settings.SigningKeyPath);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new Microsoft.Extensions.Options.OptionsValidationException(Hosting.ServerOptions.Section, typeof(JournalSettings),
                    [$"Journal:SigningKeyPath: cannot read the signing key file ({e.GetType().Name})"]);
            }

            return ImportSigningKey(pem, "Journal:SigningKeyPath");
        }

        insideDataDir = true;
        return AuditSigningKey();
    }

    private static ECDsa ImportSigningKey(string pem, string setting)
    {
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
            if (key.KeySize != 256)
            {
                throw new CryptographicException("not P-256");
            }

            // A public key alone cannot sign: refuse now rather than at the first checkpoint.
            key.ExportECPrivateKey();
            return key;
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            key.Dispose();
            throw new Microsoft.Extensions.Options.OptionsValidationException(Hosting.ServerOptions.Section, typeof(JournalSettings),
                [$"{setting}: expected an ECDSA P-256 private key in PEM (-----BEGIN PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----)"]);
        }
    }

    /// <summary>The ECDSA P-256 key that signs audit checkpoints, kept in secrets/ when no key is given from outside.</summary>
    public ECDsa AuditSigningKey()
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        if (File.Exists(AuditSigningKeyPath))
        {
            key.ImportFromPem(File.ReadAllText(AuditSigningKeyPath));
        }
        else
        {
            WriteOwnerOnly(AuditSigningKeyPath, System.Text.Encoding.ASCII.GetBytes(key.ExportPkcs8PrivateKeyPem()));
        }

        if (!File.Exists(AuditVerifyingKeyPath))
        {
            File.WriteAllText(AuditVerifyingKeyPath, key.ExportSubjectPublicKeyInfoPem());
        }

        return key;
    }

    /// <summary>Creates the file with owner-only permissions from the start, so there is no moment it is readable by others.</summary>
    private static void WriteOwnerOnly(string path, byte[] content)
    {
        var folder = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(folder))
        {
            if (OperatingSystem.IsWindows())
            {
                Directory.CreateDirectory(folder);
            }
            else
            {
                Directory.CreateDirectory(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
        }

        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = OwnerOnly;
        }

        using var stream = new FileStream(path, options);
        stream.Write(content);
        stream.Flush(flushToDisk: true);
    }
}
