using Npgsql;
using TenantDb.Functions.Administration;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Handoff;
using TenantDb.Functions.Secrets;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Handoff;

/// <summary>
/// The durable first password (DESIGN.md §5): the ready row carries its password sealed for the handoff, so a deposit lost
/// after the row turned ready loses no password. The claim's re-deposit of it needs the entity engine: LocalHost's
/// <c>LoadFaultProofTests</c> (host killed between ready and the deposit; catalog restarted mid-load).
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class FirstPasswordCopyTests(PostgresFixture fixture)
{
    private static AllocationRequest Request(Guid instance) => new(instance.ToString(), Guid.NewGuid().ToString(), "standard");

    private static Task<string?> CopyAsync(TestApp app, Guid instance) =>
        app.CatalogScalarAsync<string>("SELECT first_password_encrypted FROM tenant_databases WHERE instance_id = @i", ("i", instance));

    [Fact]
    public async Task Allocate_ReadyRowCarriesTheFirstPasswordSealedForThisInstanceOnly()
    {
        await using var app = await TestApp.StartAsync(fixture);
        await app.AddPoolAsync(fixture.Pools[1], 10);
        var instance = Guid.NewGuid();

        var allocated = Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(Request(instance), CancellationToken.None));

        var copy = await CopyAsync(app, instance);
        var secrets = app.Get<SecretProtector>();
        Assert.NotNull(copy);
        Assert.StartsWith(secrets.CurrentPrefix, copy);
        Assert.DoesNotContain(allocated.Password!.Reveal(), copy);
        Assert.Equal(allocated.Password.Reveal(), secrets.Unprotect(copy, HandoffService.Purpose(instance)));
        Assert.ThrowsAny<System.Security.Cryptography.CryptographicException>(() => secrets.Unprotect(copy, HandoffService.Purpose(Guid.NewGuid())));
        await using var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1", Port = allocated.Pool.Port, Database = allocated.Tenant.DbName, Username = allocated.Tenant.DbUser,
            Password = secrets.Unprotect(copy, HandoffService.Purpose(instance)), Pooling = false, Timeout = 15,
        }.ConnectionString);
        await conn.OpenAsync();
    }

    [Fact]
    public async Task Release_Rotation_AndTheCleanupPastTheTtl_EachClearTheCopy()
    {
        await using var app = await TestApp.StartAsync(fixture);
        await app.AddPoolAsync(fixture.Pools[1], 10);
        var (released, rotated, expired, fresh) = (Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid(), Guid.NewGuid());
        foreach (var instance in new[] { released, rotated, expired, fresh })
        {
            Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(Request(instance), CancellationToken.None));
        }

        await app.Allocation.ReleaseAsync(released, "test", CancellationToken.None);
        Assert.IsType<PasswordChange.Changed>(await app.Get<PasswordRotation>().ChangePasswordAsync(rotated, CancellationToken.None));
        await app.CatalogScalarAsync<int>("UPDATE tenant_databases SET ready_at = now() - interval '2 hours' WHERE instance_id = @i RETURNING 1", ("i", expired));
        var summary = await app.Get<CleanupService>().RunAsync(CancellationToken.None);

        Assert.Null(await CopyAsync(app, released));
        Assert.Null(await CopyAsync(app, rotated));
        Assert.Null(await CopyAsync(app, expired));
        Assert.NotNull(await CopyAsync(app, fresh)); // within the TTL (1 h): still claimable
        Assert.Equal(1, summary.FirstPasswordsExpired);
    }

    [Fact]
    public async Task Allocate_InlinePasswordMode_KeepsNoCopy()
    {
        await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?> { ["Allocation:InlinePassword"] = "true" });
        await app.AddPoolAsync(fixture.Pools[1], 10);
        var instance = Guid.NewGuid();

        Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(Request(instance), CancellationToken.None));

        Assert.Null(await CopyAsync(app, instance));
    }
}
