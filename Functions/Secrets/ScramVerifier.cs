using System.Security.Cryptography;
using System.Text;

namespace TenantDb.Functions.Secrets;

/// <summary>
/// Computes PostgreSQL's SCRAM-SHA-256 password verifier on the client (RFC 5802/7677 as PostgreSQL stores it),
/// so a <c>CREATE ROLE … PASSWORD</c> never carries the clear password to the server or its logs.
/// </summary>
public static class ScramVerifier
{
    public const int DefaultIterations = 4096;

    public static string Compute(string password, int iterations = DefaultIterations)
    {
        // SASLprep is the identity for the letters-and-digits passwords this service generates.
        if (!password.All(char.IsAsciiLetterOrDigit))
        {
            throw new ArgumentException("Only ASCII letters and digits are supported.", nameof(password));
        }

        var salt = RandomNumberGenerator.GetBytes(16);
        var salted = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, iterations, HashAlgorithmName.SHA256, 32);
        var clientKey = HMACSHA256.HashData(salted, "Client Key"u8);
        var storedKey = SHA256.HashData(clientKey);
        var serverKey = HMACSHA256.HashData(salted, "Server Key"u8);
        CryptographicOperations.ZeroMemory(salted);
        return $"SCRAM-SHA-256${iterations}:{Convert.ToBase64String(salt)}${Convert.ToBase64String(storedKey)}:{Convert.ToBase64String(serverKey)}";
    }
}
