using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace TenantDb.Functions.Secrets;

/// <summary>
/// Encrypts secrets at rest (pool admin passwords in the catalog, credential handoff payloads in durable state)
/// with AES-256-GCM. The purpose is bound as associated data, so a ciphertext cannot be replayed in another place.
/// A ciphertext names the key that made it (<c>v2:&lt;key id&gt;:&lt;base64&gt;</c>), so the key can rotate
/// (<see cref="SecretKeyring"/>); the first format (<c>v1:&lt;base64&gt;</c>, no key id) still decrypts.
/// </summary>
public sealed class SecretProtector
{
    private const string LegacyVersion = "v1";
    private const string Version = "v2";
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private readonly SecretKeyring _keys;

    public SecretProtector(IOptions<SecretsOptions> options)
    {
        _keys = SecretKeyring.From(options.Value);
    }

    /// <summary>The id of the key that encrypts.</summary>
    public string CurrentKeyId => _keys.CurrentKeyId;

    /// <summary>How every ciphertext made now begins: <c>v2:&lt;current key id&gt;:</c>.</summary>
    public string CurrentPrefix => $"{Version}:{_keys.CurrentKeyId}:";

    /// <summary>The purpose of a tenant password on its way to the caller (the handoff entity, the catalog's first-password copy).</summary>
    public static string HandoffPurpose(Guid instanceId) => $"handoff:{instanceId:D}";

    public static bool IsValidKey(string? key) =>
        SecretKeyring.Validate(new SecretsOptions { Key = key ?? "" }).Count == 0 && !string.IsNullOrWhiteSpace(key);

    public static string GenerateKey() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(SecretKeyring.KeySize));

    /// <summary>The key id a ciphertext names, or null for the first format (no key id) and for text that is no ciphertext.</summary>
    public static string? KeyIdOf(string ciphertext)
    {
        var parts = ciphertext.Split(':', 3);
        return parts.Length == 3 && parts[0] == Version ? parts[1] : null;
    }

    public string Protect(string plaintext, string purpose)
    {
        var clear = Encoding.UTF8.GetBytes(plaintext);
        var buffer = new byte[NonceSize + TagSize + clear.Length];
        var nonce = buffer.AsSpan(0, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(_keys.CurrentKey, TagSize);
        aes.Encrypt(nonce, clear, buffer.AsSpan(NonceSize + TagSize), buffer.AsSpan(NonceSize, TagSize), Encoding.UTF8.GetBytes(purpose));
        CryptographicOperations.ZeroMemory(clear);
        return $"{CurrentPrefix}{Convert.ToBase64String(buffer)}";
    }

    /// <exception cref="CryptographicException">
    /// The ciphertext was altered, made for another purpose, or made with a key that is not configured.
    /// </exception>
    public string Unprotect(string ciphertext, string purpose)
    {
        var parts = ciphertext.Split(':', 3);
        switch (parts)
        {
            case [Version, var keyId, var payload]:
                if (!_keys.Keys.TryGetValue(keyId, out var key))
                {
                    throw new CryptographicException(
                        $"The secret was made with key '{(SecretKeyring.IsValidKeyId(keyId) ? keyId : "?")}', which is not configured (Secrets:Keys).");
                }

                return Decrypt(key, Payload(payload), purpose);
            case [LegacyVersion, var payload]:
                // The first format names no key: Secrets:Key made it; any other configured key is tried after it.
                var buffer = Payload(payload);
                var candidates = _keys.LegacyKey is { } legacy ? _keys.Keys.Values.Where(k => k != legacy).Prepend(legacy) : _keys.Keys.Values;
                foreach (var candidate in candidates)
                {
                    try
                    {
                        return Decrypt(candidate, buffer, purpose);
                    }
                    catch (AuthenticationTagMismatchException)
                    {
                        // Not this key.
                    }
                }

                throw new CryptographicException("The secret (first format, no key id) does not decrypt with any configured key.");
            default:
                throw new CryptographicException("Unknown secret format.");
        }
    }

    /// <summary>
    /// The same secret encrypted under the current key, or null when <paramref name="ciphertext"/> already is.
    /// </summary>
    /// <exception cref="CryptographicException">It does not decrypt with the configured keys.</exception>
    public string? Rewrap(string ciphertext, string purpose) =>
        ciphertext.StartsWith(CurrentPrefix, StringComparison.Ordinal) ? null : Protect(Unprotect(ciphertext, purpose), purpose);

    private static byte[] Payload(string base64)
    {
        byte[] buffer;
        try
        {
            buffer = Convert.FromBase64String(base64);
        }
        catch (FormatException)
        {
            throw new CryptographicException("Malformed secret.");
        }

        return buffer.Length < NonceSize + TagSize ? throw new CryptographicException("Truncated secret.") : buffer;
    }

    private static string Decrypt(byte[] key, byte[] buffer, string purpose)
    {
        var clear = new byte[buffer.Length - NonceSize - TagSize];
        using var aes = new AesGcm(key, TagSize);
        aes.Decrypt(buffer.AsSpan(0, NonceSize), buffer.AsSpan(NonceSize + TagSize), buffer.AsSpan(NonceSize, TagSize), clear, Encoding.UTF8.GetBytes(purpose));
        return Encoding.UTF8.GetString(clear);
    }
}
