using System.Security.Cryptography;

namespace TenantDb.Functions.Secrets;

/// <summary>Passwords from the OS CSPRNG: letters and digits only (symbols break connection URIs and Odoo's config).</summary>
public static class PasswordGenerator
{
    public const int MinimumLength = 32;
    private const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    public static string Generate(int length)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(length, MinimumLength);
        return RandomNumberGenerator.GetString(Alphabet, length);
    }
}
