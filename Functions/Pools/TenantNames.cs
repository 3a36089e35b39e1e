using System.Security.Cryptography;
using System.Text;

namespace TenantDb.Functions.Pools;

/// <summary>
/// A tenant's database and role names: deterministic from <c>instance_id</c> and opaque (every role on a server
/// can list all names, so nothing about the customer is in them).
/// </summary>
public sealed record TenantNames(string Database, string LoginRole, string OwnerRole)
{
    private const int HashHexChars = 24;

    public static TenantNames For(Guid instanceId, string prefix)
    {
        var hash = SHA256.HashData(Encoding.ASCII.GetBytes(instanceId.ToString("D")));
        var stem = prefix + Convert.ToHexStringLower(hash)[..HashHexChars];
        var names = new TenantNames(stem, stem, stem + "_owner");
        if (!Identifier.IsSafe(names.OwnerRole))
        {
            throw new ArgumentException($"The prefix '{prefix}' makes names that are not safe PostgreSQL identifiers.", nameof(prefix));
        }

        return names;
    }
}
