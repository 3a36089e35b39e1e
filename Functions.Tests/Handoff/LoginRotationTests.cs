using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Handoff;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Tests.Infrastructure;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Tests.Handoff;

/// <summary>
/// Alternating logins (DESIGN.md §9) against the real catalog and pool servers: the database half of a rotation, crashes
/// at each step, concurrent rotations, the sweep's grace, release and purge. The Durable half (deposit, claim) runs end to
/// end on LocalHost (<c>CredentialRotationEndToEndTests</c>).
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class LoginRotationTests(PostgresFixture fixture)
{
    private static AllocationRequest Request(Guid instance) => new(instance.ToString(), Guid.NewGuid().ToString(), "standard");

    private static async Task<AllocationOutcome.Allocated> AllocateAsync(TestApp app, Guid instance) =>
        Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(Request(instance), CancellationToken.None));

    /// <summary>Null when the login logs in to the tenant database; else the server's SQLSTATE.</summary>
    private static async Task<string?> LoginAsync(Pool pool, TenantDatabase tenant, string login, string password)
    {
        await using var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1", Port = pool.Port, Database = tenant.DbName, Username = login, Password = password, Pooling = false, Timeout = 15,
        }.ConnectionString);
        try
        {
            await conn.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT current_user", conn);
            Assert.EndsWith("_owner", (string?)await cmd.ExecuteScalarAsync()); // SET role = owner on both logins
            return null;
        }
        catch (PostgresException e)
        {
            return e.SqlState;
        }
    }

    private static Task<string?> DbUserAsync(TestApp app, Guid instance) =>
        app.CatalogScalarAsync<string>("SELECT db_user FROM tenant_databases WHERE instance_id = @i AND status = 'ready'", ("i", instance));

    [Fact]
    [Trait("Issue9", "7")]
    public async Task Rotation_CrashBetweenStoreAndSet_LoginInUseWorksAndTheNextRotationTakesOverAfterItsLease()
    {
        var crash = new CrashingDdl();
        await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?> { ["Handoff:RotationTimeout"] = "00:00:02" },
            services => services.AddSingleton<ITenantDdl>(sp => crash.Wrap(ActivatorUtilities.CreateInstance<TenantDdl>(sp))));
        await app.AddPoolAsync(fixture.Pools[1], 10);
        var instance = Guid.NewGuid();
        var allocated = await AllocateAsync(app, instance);
        var handoff = app.Get<PasswordRotation>();
        crash.BeforeNextSet = true;

        await Assert.ThrowsAsync<SimulatedCrash>(() => handoff.ChangePasswordAsync(instance, CancellationToken.None));

        // What the crash left: the rotation recorded with its password encrypted, nothing set, the login in use intact.
        Assert.Equal("setting", await app.CatalogScalarAsync<string>("SELECT rotation_state FROM tenant_databases WHERE instance_id = @i", ("i", instance)));
        Assert.NotNull(await app.CatalogScalarAsync<string>("SELECT rotation_password_encrypted FROM tenant_databases WHERE instance_id = @i", ("i", instance)));
        Assert.Null(await LoginAsync(allocated.Pool, allocated.Tenant, allocated.Tenant.DbUser, allocated.Password!.Reveal()));
        Assert.IsType<PasswordChange.InProgress>(await handoff.ChangePasswordAsync(instance, CancellationToken.None));

        await Task.Delay(TimeSpan.FromSeconds(2.5));
        var changed = Assert.IsType<PasswordChange.Changed>(await handoff.ChangePasswordAsync(instance, CancellationToken.None));

        Assert.Null(await LoginAsync(allocated.Pool, allocated.Tenant, changed.Login, changed.Password.Reveal()));
        Assert.Null(await LoginAsync(allocated.Pool, allocated.Tenant, allocated.Tenant.DbUser, allocated.Password.Reveal()));
    }

    [Fact]
    [Trait("Issue9", "7")]
    public async Task Rotation_CrashBetweenSetAndDeposit_LoginInUseWorksAndTheSweepRefusesTheLoginNobodyHolds()
    {
        await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?> { ["Handoff:RotationGrace"] = "00:00:01" });
        await app.AddPoolAsync(fixture.Pools[1], 10);
        var instance = Guid.NewGuid();
        var allocated = await AllocateAsync(app, instance);
        var handoff = app.Get<PasswordRotation>();

        // The database half only, then nothing: exactly what a crash before the deposit leaves.
        var changed = Assert.IsType<PasswordChange.Changed>(await handoff.ChangePasswordAsync(instance, CancellationToken.None));
        Assert.Null(await LoginAsync(allocated.Pool, allocated.Tenant, allocated.Tenant.DbUser, allocated.Password!.Reveal()));
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        Assert.Equal(1, await handoff.SweepRotationsAsync(CancellationToken.None));

        Assert.Equal("28000", await LoginAsync(allocated.Pool, allocated.Tenant, changed.Login, changed.Password.Reveal())); // NOLOGIN
        Assert.Null(await LoginAsync(allocated.Pool, allocated.Tenant, allocated.Tenant.DbUser, allocated.Password.Reveal()));
        Assert.Equal(allocated.Tenant.DbUser, await DbUserAsync(app, instance));
        Assert.Null(await app.CatalogScalarAsync<string>("SELECT rotation_password_encrypted FROM tenant_databases WHERE instance_id = @i", ("i", instance)));
        // And the tenant can rotate again: the idle login logs in once more with its next password.
        var next = Assert.IsType<PasswordChange.Changed>(await handoff.ChangePasswordAsync(instance, CancellationToken.None));
        Assert.Equal(changed.Login, next.Login);
        Assert.Null(await LoginAsync(allocated.Pool, allocated.Tenant, next.Login, next.Password.Reveal()));
    }

    [Fact]
    [Trait("Issue9", "7")]
    public async Task ChangePassword_FiveAtOnce_OneSetsThePasswordTheOthersAreInProgressNoneFails()
    {
        await using var app = await TestApp.StartAsync(fixture);
        await app.AddPoolAsync(fixture.Pools[2], 10);
        var instance = Guid.NewGuid();
        var allocated = await AllocateAsync(app, instance);
        var handoff = app.Get<PasswordRotation>();

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => Task.Run(() => handoff.ChangePasswordAsync(instance, CancellationToken.None))));

        var changed = Assert.Single(outcomes.OfType<PasswordChange.Changed>());
        Assert.Equal(4, outcomes.OfType<PasswordChange.InProgress>().Count());
        Assert.Null(await LoginAsync(allocated.Pool, allocated.Tenant, changed.Login, changed.Password.Reveal()));
        Assert.Null(await LoginAsync(allocated.Pool, allocated.Tenant, allocated.Tenant.DbUser, allocated.Password!.Reveal()));
    }

    [Fact]
    [Trait("Issue9", "7")]
    public async Task ChangePassword_AgainBeforeTheFirstIsClaimed_TargetsTheSameIdleLoginAndNeverTheOneInUse()
    {
        await using var app = await TestApp.StartAsync(fixture);
        await app.AddPoolAsync(fixture.Pools[2], 10);
        var instance = Guid.NewGuid();
        var allocated = await AllocateAsync(app, instance);
        var handoff = app.Get<PasswordRotation>();
        var first = Assert.IsType<PasswordChange.Changed>(await handoff.ChangePasswordAsync(instance, CancellationToken.None));
        Assert.True(await app.Get<LoginRotationStore>().MarkDepositedAsync(allocated.Tenant.Id, first.RotationId, CancellationToken.None));

        var second = Assert.IsType<PasswordChange.Changed>(await handoff.ChangePasswordAsync(instance, CancellationToken.None));

        Assert.Equal(first.Login, second.Login);
        Assert.True(second.RotationId > first.RotationId);
        Assert.Equal("28P01", await LoginAsync(allocated.Pool, allocated.Tenant, first.Login, first.Password.Reveal()));
        Assert.Null(await LoginAsync(allocated.Pool, allocated.Tenant, second.Login, second.Password.Reveal()));
        Assert.Null(await LoginAsync(allocated.Pool, allocated.Tenant, allocated.Tenant.DbUser, allocated.Password!.Reveal()));
        // The first rotation's deposit, if a claim took it now, could not commit: its password is no longer in force.
        Assert.Equal(RotationCommit.Superseded, await app.Get<LoginRotationStore>().CommitAsync(allocated.Tenant.Id, first.RotationId, first.Login, "test", CancellationToken.None));
    }

    [Fact]
    [Trait("Issue9", "7")]
    public async Task Sweep_DepositedRotationUnclaimedPastItsGrace_IsAbandonedAndTheLoginInUseKeepsWorking()
    {
        await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?> { ["Handoff:RotationGrace"] = "00:00:01" });
        await app.AddPoolAsync(fixture.Pools[1], 10);
        var instance = Guid.NewGuid();
        var allocated = await AllocateAsync(app, instance);
        var handoff = app.Get<PasswordRotation>();
        var changed = Assert.IsType<PasswordChange.Changed>(await handoff.ChangePasswordAsync(instance, CancellationToken.None));
        await app.Get<LoginRotationStore>().MarkDepositedAsync(allocated.Tenant.Id, changed.RotationId, CancellationToken.None);
        Assert.Equal(0, await handoff.SweepRotationsAsync(CancellationToken.None)); // within its grace: nothing to do

        await Task.Delay(TimeSpan.FromSeconds(1.5));
        Assert.Equal(1, await handoff.SweepRotationsAsync(CancellationToken.None));

        // Nobody claimed the new password, so nobody holds it: the login in use stays, the new one is refused (DESIGN §8.3).
        Assert.Equal(allocated.Tenant.DbUser, await DbUserAsync(app, instance));
        Assert.Null(await LoginAsync(allocated.Pool, allocated.Tenant, allocated.Tenant.DbUser, allocated.Password!.Reveal()));
        Assert.Equal("28000", await LoginAsync(allocated.Pool, allocated.Tenant, changed.Login, changed.Password.Reveal()));
        Assert.Equal("abandoned", await app.CatalogScalarAsync<string>("SELECT rotation_state FROM tenant_databases WHERE instance_id = @i", ("i", instance)));
        Assert.Null(await app.CatalogScalarAsync<string>("SELECT rotation_password_encrypted FROM tenant_databases WHERE instance_id = @i", ("i", instance)));
        Assert.NotEqual(RotationCommit.Committed, await app.Get<LoginRotationStore>().CommitAsync(allocated.Tenant.Id, changed.RotationId, changed.Login, "test", CancellationToken.None));

        // The next rotation goes to the idle login again, which logs in again (NOLOGIN → LOGIN).
        var next = Assert.IsType<PasswordChange.Changed>(await handoff.ChangePasswordAsync(instance, CancellationToken.None));
        Assert.Equal(changed.Login, next.Login);
        Assert.Null(await LoginAsync(allocated.Pool, allocated.Tenant, next.Login, next.Password.Reveal()));
        Assert.Null(await LoginAsync(allocated.Pool, allocated.Tenant, allocated.Tenant.DbUser, allocated.Password!.Reveal()));
    }

    [Fact]
    [Trait("Issue9", "7")]
    public async Task ReleaseAndPurge_AfterARotation_BothLoginsRefusedThenBothDropped()
    {
        await using var app = await TestApp.StartAsync(fixture);
        await app.AddPoolAsync(fixture.Pools[2], 10);
        var instance = Guid.NewGuid();
        var allocated = await AllocateAsync(app, instance);
        var changed = Assert.IsType<PasswordChange.Changed>(await app.Get<PasswordRotation>().ChangePasswordAsync(instance, CancellationToken.None));

        await app.Allocation.ReleaseAsync(instance, "test", CancellationToken.None);

        Assert.NotNull(await LoginAsync(allocated.Pool, allocated.Tenant, changed.Login, changed.Password.Reveal()));
        Assert.NotNull(await LoginAsync(allocated.Pool, allocated.Tenant, allocated.Tenant.DbUser, allocated.Password!.Reveal()));
        Assert.Equal(0L, await fixture.Pools[2].ScalarAsync<long>(
            $"SELECT count(*) FROM pg_roles WHERE rolname IN ('{allocated.Tenant.DbUser}', '{changed.Login}') AND rolcanlogin"));

        Assert.Equal(new PurgeResult(1, 0), await app.Purge.PurgeReleasedAsync(DateTimeOffset.UtcNow.AddDays(1), "test", CancellationToken.None));
        Assert.Equal(0L, await fixture.Pools[2].ScalarAsync<long>(
            $"SELECT count(*) FROM pg_roles WHERE rolname IN ('{allocated.Tenant.DbUser}', '{changed.Login}')"));
    }

    [Fact]
    [Trait("Issue9", "7")]
    public async Task SetLoginPassword_DatabaseClosedByAReleaseMeanwhile_FalseAndTheLoginStaysRefused()
    {
        await using var app = await TestApp.StartAsync(fixture);
        await app.AddPoolAsync(fixture.Pools[2], 10);
        var instance = Guid.NewGuid();
        var allocated = await AllocateAsync(app, instance);
        var names = app.Allocation.NamesFor(instance);
        var ddl = app.Get<ITenantDdl>();
        // The release's pool half ran (database closed, logins refused) between the rotation's check and its set.
        await ddl.ReleaseAsync(allocated.Pool, names, CancellationToken.None);

        var set = await ddl.SetLoginPasswordAsync(allocated.Pool, names, names.AlternateLoginRole,
            Secrets.ScramVerifier.Compute(Secrets.PasswordGenerator.Generate(40)), 40, CancellationToken.None);

        Assert.False(set);
        Assert.Equal(0L, await fixture.Pools[2].ScalarAsync<long>(
            $"SELECT count(*) FROM pg_roles WHERE rolname IN ('{names.LoginRole}', '{names.AlternateLoginRole}') AND rolcanlogin"));
    }

    private sealed class SimulatedCrash : Exception;

    /// <summary>The real DDL, except that it can stop the process (as a crash would: nothing after it runs) before a set.</summary>
    private sealed class CrashingDdl
    {
        public bool BeforeNextSet { get; set; }

        public ITenantDdl Wrap(ITenantDdl inner) => new Ddl(this, inner);

        private sealed class Ddl(CrashingDdl owner, ITenantDdl inner) : ITenantDdl
        {
            public Task CreateAsync(Pool pool, TenantNames names, string scramVerifier, int connectionLimit, CancellationToken ct) =>
                inner.CreateAsync(pool, names, scramVerifier, connectionLimit, ct);

            public Task<bool> CreateFromStockAsync(Pool pool, string stockName, TenantNames names, string scramVerifier, int connectionLimit, CancellationToken ct) =>
                inner.CreateFromStockAsync(pool, stockName, names, scramVerifier, connectionLimit, ct);

            public Task ReleaseAsync(Pool pool, TenantNames names, CancellationToken ct) => inner.ReleaseAsync(pool, names, ct);

            public Task DropAsync(Pool pool, TenantNames names, CancellationToken ct) => inner.DropAsync(pool, names, ct);

            public Task<bool> SetLoginPasswordAsync(Pool pool, TenantNames names, string login, string scramVerifier, int connectionLimit, CancellationToken ct)
            {
                if (owner.BeforeNextSet)
                {
                    owner.BeforeNextSet = false;
                    throw new SimulatedCrash();
                }

                return inner.SetLoginPasswordAsync(pool, names, login, scramVerifier, connectionLimit, ct);
            }

            public Task DisableLoginAsync(Pool pool, TenantNames names, string login, CancellationToken ct) => inner.DisableLoginAsync(pool, names, login, ct);
        }
    }
}
