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

    /// <summary>
    /// The second login role (DESIGN.md §9, alternating logins): a rotation sets the new password on whichever of
    /// <see cref="LoginRole"/> and this one is idle, so the login in use keeps working until the new password is claimed.
    /// </summary>
    public string AlternateLoginRole => LoginRole + "_b";

    /// <summary>Both login roles of the tenant.</summary>
    public IReadOnlyList<string> LoginRoles => [LoginRole, AlternateLoginRole];

    /// <summary>The login a rotation uses when <paramref name="current"/> is in use.</summary>
    public string IdleLogin(string current) => current == LoginRole ? AlternateLoginRole : LoginRole;

    public static TenantNames For(Guid instanceId, string prefix)
    {
        var hash = SHA256.HashData(Encoding.ASCII.GetBytes(instanceId.ToString("D")));
        var stem = prefix + Convert.ToHexStringLower(hash)[..HashHexChars];
        var names = new TenantNames(stem, stem, stem + "_owner");
        if (!Identifier.IsSafe(names.OwnerRole) || !Identifier.IsSafe(names.AlternateLoginRole))
        {
            throw new ArgumentException($"The prefix '{prefix}' makes names that are not safe PostgreSQL identifiers.", nameof(prefix));
        }

        return names;
    }
}
