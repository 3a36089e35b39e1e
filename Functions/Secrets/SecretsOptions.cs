using System.ComponentModel.DataAnnotations;

namespace TenantDb.Functions.Secrets;

/// <summary>
/// The keys of secrets at rest. One current key encrypts; every configured key decrypts, so the key can rotate: add the new
/// key under <see cref="Keys"/>, make it current, keep the old one until its ciphertext is re-wrapped (and handoffs made
/// under it have expired), then remove it.
/// </summary>
public sealed class SecretsOptions
{
    public const string Section = "Secrets";

    /// <summary>
    /// Base64 of a 32-byte AES-256 key (in Azure, a Key Vault reference in app settings). The single-key form: its key id is
    /// derived from the key (<see cref="SecretKeyring.LegacyKeyId"/>), and it also decrypts ciphertext of the first format
    /// (<c>v1:</c>, no key id). Optional when <see cref="Keys"/> holds the keys.
    /// </summary>
    public string Key { get; set; } = "";

    /// <summary>Key id → base64 of a 32-byte key. Ids are letters, digits, <c>-</c> and <c>_</c>, at most 32 characters.</summary>
    public Dictionary<string, string> Keys { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The key id that encrypts. Not needed when exactly one key is configured.</summary>
    public string? CurrentKeyId { get; set; }

    /// <summary>How many catalog ciphertexts one health sweep re-wraps under the current key at most.</summary>
    [Range(1, 10_000)]
    public int RewrapBatchSize { get; set; } = 100;
}
