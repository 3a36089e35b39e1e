using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace TenantDb.Functions.Secrets;

/// <summary>
/// The configured keys by id, and the one that encrypts. Error messages name settings and key ids only, never key material.
/// </summary>
public sealed partial class SecretKeyring
{
    public const int KeySize = 32;

    private SecretKeyring(IReadOnlyDictionary<string, byte[]> keys, string currentKeyId, byte[]? legacyKey)
    {
        Keys = keys;
        CurrentKeyId = currentKeyId;
        LegacyKey = legacyKey;
    }

    /// <summary>Every key that decrypts, by id (ids compare case-insensitively).</summary>
    public IReadOnlyDictionary<string, byte[]> Keys { get; }

    public string CurrentKeyId { get; }

    public byte[] CurrentKey => Keys[CurrentKeyId];

    /// <summary><c>Secrets:Key</c>, the key of ciphertext made before key ids existed; null when not configured.</summary>
    public byte[]? LegacyKey { get; }

    /// <summary>The id of the single-key form <c>Secrets:Key</c>: the first 8 hex digits of the SHA-256 of the key's bytes.</summary>
    public static string LegacyKeyId(byte[] key) => Convert.ToHexStringLower(SHA256.HashData(key))[..8];

    public static bool IsValidKeyId(string? id) => id is not null && KeyIdPattern().IsMatch(id);

    /// <exception cref="OptionsValidationException">The configuration does not make a usable keyring.</exception>
    public static SecretKeyring From(SecretsOptions options)
    {
        var errors = new List<string>();
        var ring = TryBuild(options, errors);
        return ring ?? throw new OptionsValidationException(SecretsOptions.Section, typeof(SecretsOptions), errors);
    }

    /// <summary>The problems of a configuration, empty when it makes a usable keyring.</summary>
    public static IReadOnlyList<string> Validate(SecretsOptions options)
    {
        var errors = new List<string>();
        TryBuild(options, errors);
        return errors;
    }

    private static SecretKeyring? TryBuild(SecretsOptions options, List<string> errors)
    {
        var keys = new Dictionary<string, byte[]>(StringComparer.OrdinalIgnoreCase);
        byte[]? legacy = null;
        if (!string.IsNullOrWhiteSpace(options.Key))
        {
            legacy = Decode(options.Key);
            if (legacy is null)
            {
                errors.Add("Secrets:Key must be base64 of 32 bytes.");
            }
            else
            {
                keys[LegacyKeyId(legacy)] = legacy;
            }
        }

        foreach (var (id, value) in options.Keys ?? [])
        {
            if (!IsValidKeyId(id))
            {
                errors.Add("A key id under Secrets:Keys is not 1 to 32 letters, digits, '-' or '_'.");
                continue;
            }

            if (Decode(value) is not { } key)
            {
                errors.Add($"Secrets:Keys:{id} must be base64 of 32 bytes.");
            }
            else if (keys.TryGetValue(id, out var other) && !CryptographicOperations.FixedTimeEquals(other, key))
            {
                errors.Add($"Secrets:Keys:{id} uses the key id of Secrets:Key for another key.");
            }
            else
            {
                keys[id] = key;
            }
        }

        string? current = null;
        if (!string.IsNullOrWhiteSpace(options.CurrentKeyId))
        {
            current = keys.Keys.FirstOrDefault(k => string.Equals(k, options.CurrentKeyId, StringComparison.OrdinalIgnoreCase));
            if (current is null)
            {
                errors.Add($"Secrets:CurrentKeyId '{(IsValidKeyId(options.CurrentKeyId) ? options.CurrentKeyId : "?")}' is not a configured key (Secrets:Keys, or the id of Secrets:Key).");
            }
        }
        else if (keys.Count == 1)
        {
            current = keys.Keys.Single();
        }
        else if (keys.Count == 0 && errors.Count == 0)
        {
            errors.Add("No secrets key is configured: set Secrets:Key, or Secrets:Keys:<id> with Secrets:CurrentKeyId.");
        }
        else if (keys.Count > 1)
        {
            errors.Add("Several secrets keys are configured: set Secrets:CurrentKeyId to the one that encrypts.");
        }

        return errors.Count == 0 && current is not null ? new SecretKeyring(keys, current, legacy) : null;
    }

    private static byte[]? Decode(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }

        var buffer = new byte[KeySize + 3];
        return Convert.TryFromBase64String(value.Trim(), buffer, out var written) && written == KeySize ? buffer[..KeySize] : null;
    }

    [GeneratedRegex("^[A-Za-z0-9_-]{1,32}$")]
    private static partial Regex KeyIdPattern();
}

/// <summary>Fails start-up on a keyring that cannot work (<see cref="SecretKeyring.Validate"/>).</summary>
public sealed class SecretsOptionsValidator : IValidateOptions<SecretsOptions>
{
    public ValidateOptionsResult Validate(string? name, SecretsOptions options) =>
        SecretKeyring.Validate(options) is { Count: > 0 } errors ? ValidateOptionsResult.Fail(errors) : ValidateOptionsResult.Success;
}
