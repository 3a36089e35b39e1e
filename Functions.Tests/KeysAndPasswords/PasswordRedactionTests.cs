using TenantDb.Functions.Allocations;
using TenantDb.Functions.Secrets;
using TenantDb.Functions.Administration;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Drivers;

namespace TenantDb.Functions.Tests.KeysAndPasswords;

/// <summary>Records and requests that carry a password print a mask in its place (issue 9, item 10), and still print the rest.</summary>
[Trait("Category", Tier.Unit)]
public sealed class PasswordRedactionTests
{
    private static readonly string Password = PasswordGenerator.Generate(40);

    [Fact]
    [Trait("Issue9", "10")]
    public void ToString_PoolServerSpec_HidesAdminPasswordKeepsName()
    {
        var text = new PoolServerSpec("shared-0042", "shared", "tenantdb_admin", Password, 2, "4g", "db.example", 5432).ToString();

        Assert.False(text.Contains(Password, StringComparison.Ordinal), "the password was printed");
        Assert.Contains("shared-0042", text);
        Assert.Contains("AdminPassword = [redacted]", text);
        Assert.Contains("RegisteredPort = 5432", text);
    }

    [Fact]
    [Trait("Issue9", "10")]
    public void ToString_PoolServerRef_HidesAdminPasswordKeepsName()
    {
        var text = new PoolServerRef("shared-0042", "/data/shared-0042", "127.0.0.1", 5432, "tenantdb_admin", Password).ToString();

        Assert.False(text.Contains(Password, StringComparison.Ordinal), "the password was printed");
        Assert.Contains("shared-0042", text);
        Assert.Contains("AdminPassword = [redacted]", text);
    }

    [Fact]
    [Trait("Issue9", "10")]
    public void ToString_RegisterPoolRequest_HidesAdminPassword()
    {
        var text = new RegisterPoolRequest { Name = "legacy", Host = "db.example", Port = 5432, AdminUser = "postgres", AdminPassword = Password }.ToString() ?? "";

        Assert.False(text.Contains(Password, StringComparison.Ordinal), "the password was printed");
    }

    [Fact]
    [Trait("Issue9", "10")]
    public void ToString_AllocationViewWithInlinePassword_HidesPasswordKeepsInstance()
    {
        var instance = Guid.NewGuid();
        var view = new AllocationView("allocated", instance, Guid.NewGuid(), "standard", 1, "127.0.0.1", 5432, "odoo_x", "odoo_x_login", "shared-0001",
            ServerType.Shared, TenantDatabaseStatus.Ready, DateTimeOffset.UnixEpoch, DateTimeOffset.UnixEpoch, 1, DbPassword: Password);

        var text = view.ToString();

        Assert.False(text.Contains(Password, StringComparison.Ordinal), "the password was printed");
        Assert.Contains(instance.ToString(), text);
        Assert.Contains("DbPassword = [redacted]", text);
        Assert.Equal(Password, view.DbPassword); // the value itself is untouched (it goes out in the inline-mode body)
    }
}
