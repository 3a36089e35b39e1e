using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace TenantDb.Functions.Secrets;

/// <summary>
/// Encrypts secrets at rest (pool admin passwords in the catalog, credential handoff payloads in durable state)
/// with AES-256-GCM. The purpose is bound as associated data, so a ciphertext cannot be replayed in another place.
/// </summary>
public sealed class SecretProtector
{
    private const string Version = "v1";
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private readonly byte[] _key;

    public SecretProtector(IOptions<SecretsOptions> options)
    {
        _key = DecodeKey(options.Value.Key);
    }

    public static bool IsValidKey(string? key)
    {
        try
        {
            DecodeKey(key);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    public static string GenerateKey() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    public string Protect(string plaintext, string purpose)
    {
        var clear = Encoding.UTF8.GetBytes(plaintext);
        var buffer = new byte[NonceSize + TagSize + clear.Length];
        var nonce = buffer.AsSpan(0, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(_key, TagSize);
        aes.Encrypt(nonce, clear, buffer.AsSpan(NonceSize + TagSize), buffer.AsSpan(NonceSize, TagSize), Encoding.UTF8.GetBytes(purpose));
        CryptographicOperations.ZeroMemory(clear);
        return $"{Version}:{Convert.ToBase64String(buffer)}";
    }

    /// <exception cref="CryptographicException">The ciphertext was altered, or made with another key or purpose.</exception>
    public string Unprotect(string ciphertext, string purpose)
    {
        if (!ciphertext.StartsWith(Version + ":", StringComparison.Ordinal))
        {
            throw new CryptographicException("Unknown secret format.");
        }

        var buffer = Convert.FromBase64String(ciphertext[(Version.Length + 1)..]);
        if (buffer.Length < NonceSize + TagSize)
        {
            throw new CryptographicException("Truncated secret.");
        }

        var clear = new byte[buffer.Length - NonceSize - TagSize];
        using var aes = new AesGcm(_key, TagSize);
        aes.Decrypt(buffer.AsSpan(0, NonceSize), buffer.AsSpan(NonceSize + TagSize), buffer.AsSpan(NonceSize, TagSize), clear, Encoding.UTF8.GetBytes(purpose));
        return Encoding.UTF8.GetString(clear);
    }

    private static byte[] DecodeKey(string? key)
    {
        if (string.IsNullOrWhiteSpace(key))
        {
            throw new FormatException("Secrets:Key is empty.");
        }

        var bytes = Convert.FromBase64String(key);
        return bytes.Length == 32 ? bytes : throw new FormatException("Secrets:Key must be 32 bytes, base64.");
    }
}
