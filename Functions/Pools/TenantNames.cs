using System.Security.Cryptography;
using System.Text;
using TenantDb.Functions.Domain;

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

    /// <summary>
    /// The names of a tenant as its catalog row records them: an adopted database keeps its own database, owner and login names
    /// (issue 14 item 7); any other tenant's names come from its instance id (<see cref="For"/>).
    /// </summary>
    public static TenantNames Of(TenantDatabase tenant, string prefix) => Of(tenant.InstanceId, tenant.DbName, tenant.OwnerRole, tenant.LoginRole, prefix);

    /// <inheritdoc cref="Of(TenantDatabase, string)"/>
    public static TenantNames Of(Guid instanceId, string dbName, string? ownerRole, string? loginRole, string prefix) =>
        ownerRole is not null && loginRole is not null ? Adopted(dbName, loginRole, ownerRole) : For(instanceId, prefix);

    /// <summary>
    /// An adopted tenant's names, checked like ours: its owner may be its first login itself (a database its login owns), and
    /// its second login (login + <c>_b</c>) must be a safe identifier too.
    /// </summary>
    public static TenantNames Adopted(string database, string loginRole, string ownerRole)
    {
        var names = new TenantNames(database, loginRole, ownerRole);
        if (!Identifier.IsSafe(database) || !Identifier.IsSafe(ownerRole) || !Identifier.IsSafe(names.AlternateLoginRole))
        {
            throw new ArgumentException("An adopted tenant's names must be safe PostgreSQL identifiers.", nameof(database));
        }

        return names;
    }

    /// <summary>The tenant's distinct roles (an adopted tenant's owner may be its first login).</summary>
    public IReadOnlyList<string> Roles => new[] { LoginRole, AlternateLoginRole, OwnerRole }.Distinct(StringComparer.Ordinal).ToArray();

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
