using System.Security.Cryptography;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Secrets;

namespace TenantDb.Functions.Pools;

/// <summary>The one way to seal and open a pool's admin password: bound to the pool's name, so a ciphertext moved to
/// another pool row does not open.</summary>
public sealed class PoolAdminPasswords(SecretProtector secrets)
{
    public static string Purpose(string poolName) => $"pool-admin:{poolName}";

    public string Protect(string password, string poolName) => secrets.Protect(password, Purpose(poolName));

    /// <summary>The clear password; throws when the configured keys cannot open it.</summary>
    public string Reveal(Pool pool) => secrets.Unprotect(pool.AdminPasswordEncrypted, Purpose(pool.Name));

    /// <summary>False, and no password, when the ciphertext is damaged or sealed with a key no longer configured.</summary>
    public bool TryReveal(Pool pool, out string password)
    {
        try
        {
            password = Reveal(pool);
            return true;
        }
        catch (Exception e) when (e is CryptographicException or FormatException)
        {
            password = "";
            return false;
        }
    }
}
