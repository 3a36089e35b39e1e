using Npgsql;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Tests.Infrastructure;
using Xunit.Abstractions;

namespace TenantDb.Functions.Tests.Allocation;

/// <summary>
/// Issue 11, tenant isolation: what a hostile tenant can try with its own login on a shared pool server, checked one by one
/// on a real server, then purges that must still succeed after what it left behind. Reports <c>isolation_checks=N/N</c>.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class IsolationProofTests(PostgresFixture fixture, ITestOutputHelper output)
{
    private static readonly CancellationToken None = CancellationToken.None;

    private static AllocationRequest Request(Guid instance) => new(instance.ToString(), Guid.NewGuid().ToString(), "standard");

    private static string LoginOf(AllocationOutcome.Allocated a, string? database = null) =>
        new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1", Port = a.Pool.Port, Database = database ?? a.Tenant.DbName, Username = a.Tenant.DbUser,
            Password = a.Password!.Reveal(), Pooling = false, Timeout = 15,
        }.ConnectionString;

    private static async Task<object?> RunAsync(string connectionString, string sql)
    {
        await using var conn = new NpgsqlConnection(connectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return await cmd.ExecuteScalarAsync();
    }

    /// <summary>True when the server refuses with one of <paramref name="sqlStates"/>; anything that succeeds is a breach.</summary>
    private static async Task<bool> RefusedAsync(string connectionString, string sql, params string[] sqlStates)
    {
        try
        {
            await RunAsync(connectionString, sql);
            return false;
        }
        catch (PostgresException e)
        {
            return sqlStates.Contains(e.SqlState);
        }
    }

    [Fact]
    public async Task Isolation_HostileTenantLogin_IsRefusedEverywhereAndItsLeftoversNeverBlockAPurge()
    {
        await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?> { ["Pools:Tiers:standard:ConnectionLimit"] = "3" });
        // As a provisioned pool is before it takes tenants (a registered one is audited to the same state).
        await app.Get<ServerHardening>().HardenAsync(await app.AddPoolAsync(fixture.Pools[2], 10), None);
        var attackerId = Guid.NewGuid();
        var victimId = Guid.NewGuid();
        var attacker = Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(Request(attackerId), None));
        var victim = Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(Request(victimId), None));
        var victimNames = app.Allocation.NamesFor(victimId);
        const string Denied = PostgresErrorCodes.InsufficientPrivilege;
        var own = LoginOf(attacker);
        var maintenance = LoginOf(attacker, "postgres");

        var checks = new List<(string Name, Func<Task<bool>> Check)>
        {
            ("connect to another tenant's database", () => RefusedAsync(LoginOf(attacker, victim.Tenant.DbName), "SELECT 1", Denied)),
            ("connect to template1", () => RefusedAsync(LoginOf(attacker, "template1"), "SELECT 1", Denied)),
            ("create a database", () => RefusedAsync(own, "CREATE DATABASE stolen", Denied)),
            ("create a role", () => RefusedAsync(own, "CREATE ROLE stolen LOGIN", Denied)),
            ("raise its own connection limit", () => RefusedAsync(own, $"ALTER ROLE \"{attacker.Tenant.DbUser}\" CONNECTION LIMIT -1", Denied)),
            ("set another tenant's password", () => RefusedAsync(own, $"ALTER ROLE \"{victimNames.LoginRole}\" PASSWORD 'x'", Denied)),
            ("become another tenant's owner", () => RefusedAsync(own, $"SET ROLE \"{victimNames.OwnerRole}\"", Denied)),
            ("read password hashes", () => RefusedAsync(own, "SELECT count(*) FROM pg_authid", Denied)),
            ("create in postgres's public schema", () => RefusedAsync(maintenance, "CREATE TABLE public.squat(x int)", Denied)),
            ("exhaust the server through postgres", () => ExhaustionRefusedAsync(maintenance, 3)),
            ("purge blocked by a grant to the victim", async () =>
            {
                await RunAsync(own, $"CREATE TABLE shared(x int); INSERT INTO shared VALUES (7); GRANT SELECT ON shared TO \"{victimNames.OwnerRole}\"");
                await app.Allocation.ReleaseAsync(victimId, "test", None);
                var purge = await app.Purge.PurgeReleasedAsync(DateTimeOffset.UtcNow.AddMinutes(1), "test", None);
                return purge == new PurgeResult(1, 0) && Convert.ToInt32(await RunAsync(own, "SELECT x FROM shared"), System.Globalization.CultureInfo.InvariantCulture) == 7;
            }),
            ("purge after hostile objects", async () =>
            {
                await RunAsync(own, "CREATE SCHEMA junk; CREATE TABLE junk.t(x int); CREATE FUNCTION junk.f() RETURNS int LANGUAGE sql AS 'SELECT 1'");
                await RunAsync(maintenance, "SELECT lo_create(0)");
                await RunAsync(own, $"ALTER DATABASE \"{attacker.Tenant.DbName}\" IS_TEMPLATE true");
                await app.Allocation.ReleaseAsync(attackerId, "test", None);
                var purge = await app.Purge.PurgeReleasedAsync(DateTimeOffset.UtcNow.AddMinutes(1), "test", None);
                return purge == new PurgeResult(1, 0)
                    && await fixture.Pools[2].ScalarAsync<long>($"SELECT count(*) FROM pg_database WHERE datname = '{attacker.Tenant.DbName}'") == 0
                    && await fixture.Pools[2].ScalarAsync<long>($"SELECT count(*) FROM pg_roles WHERE rolname LIKE '{attacker.Tenant.DbName}%'") == 0;
            }),
        };

        var failed = new List<string>();
        foreach (var (name, check) in checks)
        {
            if (!await check())
            {
                failed.Add(name);
            }
        }

        var summary = $"proof security: isolation_checks={checks.Count - failed.Count}/{checks.Count}";
        output.WriteLine(summary);
        ProofReport.Write(summary);
        Assert.True(failed.Count == 0, "A tenant login got through: " + string.Join("; ", failed));
    }

    /// <summary>The login's limit holds on every database of the server: one connection past it is refused.</summary>
    private static async Task<bool> ExhaustionRefusedAsync(string connectionString, int limit)
    {
        var held = new List<NpgsqlConnection>();
        try
        {
            for (var i = 0; i < limit; i++)
            {
                var conn = new NpgsqlConnection(connectionString);
                await conn.OpenAsync();
                held.Add(conn);
            }

            return await RefusedAsync(connectionString, "SELECT 1", PostgresErrorCodes.TooManyConnections);
        }
        finally
        {
            foreach (var conn in held)
            {
                await conn.DisposeAsync();
            }
        }
    }
}
