using Microsoft.Extensions.Options;
using Npgsql;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Handoff;
using TenantDb.Functions.Tests.Infrastructure;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Tests.Handoff;

/// <summary>
/// <see cref="HandoffService"/> against the real catalog and pool servers. The Durable half (signal, claim run) needs an
/// entity-capable client, which only the LocalHost engine has; here the rotation's database half runs for real.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class HandoffServiceTests(PostgresFixture fixture)
{
    private static AllocationRequest Request(Guid instance) => new(instance.ToString(), Guid.NewGuid().ToString(), "standard");

    private static string TenantConnection(Pool pool, TenantDatabase tenant, string password) =>
        new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = pool.Port, Database = tenant.DbName, Username = tenant.DbUser, Password = password, Pooling = false, Timeout = 15 }.ConnectionString;

    private static async Task<AllocationOutcome.Allocated> AllocateAsync(TestApp app, Guid instance) =>
        Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(Request(instance), CancellationToken.None));

    [Fact]
    [Trait("Issue9", "7")]
    public async Task ChangePassword_ReadyTenant_NewPasswordOnTheIdleLoginWhileTheLoginInUseKeepsWorking()
    {
        await using var app = await TestApp.StartAsync(fixture);
        await app.AddPoolAsync(fixture.Pools[0], 10); // pool-a runs with log_statement=all
        var instance = Guid.NewGuid();
        var allocated = await AllocateAsync(app, instance);
        var old = allocated.Password!.Reveal();

        var change = await app.Get<PasswordRotation>().ChangePasswordAsync(instance, CancellationToken.None);

        var changed = Assert.IsType<PasswordChange.Changed>(change);
        var fresh = changed.Password.Reveal();
        var names = app.Allocation.NamesFor(instance);
        Assert.NotEqual(old, fresh);
        Assert.Equal(40, fresh.Length);
        Assert.Equal(names.AlternateLoginRole, changed.Login);
        // The login in use is untouched until the new password is claimed; the new one logs in on the other login.
        Assert.Equal(allocated.Tenant.DbUser, await SessionUserAsync(allocated.Pool, allocated.Tenant, allocated.Tenant.DbUser, old));
        Assert.Equal(names.AlternateLoginRole, await SessionUserAsync(allocated.Pool, allocated.Tenant, names.AlternateLoginRole, fresh));
        Assert.Equal(allocated.Tenant.DbUser, await app.CatalogScalarAsync<string>("SELECT db_user FROM tenant_databases WHERE instance_id = @i", ("i", instance)));
        // Stored before it was set, and only as ciphertext.
        var stored = await app.CatalogScalarAsync<string>("SELECT rotation_password_encrypted FROM tenant_databases WHERE instance_id = @i", ("i", instance));
        Assert.Equal(fresh, app.Get<Secrets.SecretProtector>().Unprotect(stored!, HandoffService.Purpose(instance)));

        var serverLog = await File.ReadAllTextAsync(fixture.Pools[0].LogFile);
        Assert.Contains($"CREATE ROLE \"{names.AlternateLoginRole}\" LOGIN INHERIT PASSWORD 'SCRAM-SHA-256$", serverLog);
        Assert.Contains("CONNECTION LIMIT 40", serverLog); // the standard tier's limit on the new login too
        Assert.DoesNotContain(fresh, serverLog);
        Assert.DoesNotContain(fresh, string.Join("\n", CapturedLogs.All));
    }

    private static async Task<string?> SessionUserAsync(Pool pool, TenantDatabase tenant, string login, string password)
    {
        await using var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(TenantConnection(pool, tenant, password)) { Username = login }.ConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT session_user", conn);
        return (string?)await cmd.ExecuteScalarAsync();
    }

    [Fact]
    public async Task ChangePassword_UnknownInstance_IsNotFound()
    {
        await using var app = await TestApp.StartAsync(fixture);

        var change = await app.Get<PasswordRotation>().ChangePasswordAsync(Guid.NewGuid(), CancellationToken.None);

        Assert.IsType<PasswordChange.NotFound>(change);
    }

    [Fact]
    public async Task ChangePassword_ReleasedTenant_IsNotReady()
    {
        await using var app = await TestApp.StartAsync(fixture);
        await app.AddPoolAsync(fixture.Pools[1], 10);
        var instance = Guid.NewGuid();
        await AllocateAsync(app, instance);
        await app.Allocation.ReleaseAsync(instance, "test", CancellationToken.None);

        var change = await app.Get<PasswordRotation>().ChangePasswordAsync(instance, CancellationToken.None);

        Assert.Equal(TenantDatabaseStatus.Released, Assert.IsType<PasswordChange.NotReady>(change).Status);
    }

    [Fact]
    public async Task Claim_InstanceWithoutReadyDatabase_IsUnknownWithoutStartingARun()
    {
        await using var app = await TestApp.StartAsync(fixture);

        // No tenant row: the answer comes from the catalog, before any Durable call (so no client is needed).
        var outcome = await app.Get<HandoffService>().ClaimAsync(null!, Guid.NewGuid(), null, CancellationToken.None);

        Assert.IsType<ClaimOutcome.Unknown>(outcome);
    }
}

/// <summary><see cref="HandoffService"/>'s wiring, options and sealing, which need no catalog: the app's services with no database behind them.</summary>
[Trait("Category", Tier.Unit)]
public sealed class HandoffConfigurationTests
{
    [Fact]
    public async Task Seal_Password_CiphertextForThisInstanceExpiringAfterTheConfiguredTtl()
    {
        await using var app = OfflineApp.Start(new Dictionary<string, string?> { ["Handoff:Ttl"] = "00:30:00" });
        var service = app.Get<HandoffService>();
        var instance = Guid.NewGuid();
        var password = Secrets.PasswordGenerator.Generate(40);

        var deposit = service.Seal(instance, new Secrets.Secret(password));

        Assert.Equal(TimeSpan.FromMinutes(30), deposit.ExpiresAt - deposit.DepositedAt);
        Assert.DoesNotContain(password, deposit.Ciphertext);
        Assert.Equal(password, app.Get<Secrets.SecretProtector>().Unprotect(deposit.Ciphertext, HandoffService.Purpose(instance)));
    }

    [Fact]
    public async Task Registration_CredentialDeposit_IsTheHandoffService()
    {
        await using var app = OfflineApp.Start();

        Assert.Same(app.Get<HandoffService>(), app.Get<ICredentialDeposit>());
    }

    [Theory]
    [InlineData("Handoff:ClaimWait", "-00:00:01")]
    [InlineData("Handoff:Ttl", "00:00:00")]
    public async Task Options_OutOfRange_FailValidation(string key, string value)
    {
        await using var app = OfflineApp.Start(new Dictionary<string, string?> { [key] = value });

        Assert.Throws<OptionsValidationException>(() => app.Get<IOptions<HandoffOptions>>().Value);
    }
}
