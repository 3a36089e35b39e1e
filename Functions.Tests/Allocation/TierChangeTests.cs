using Microsoft.Extensions.DependencyInjection;
using System.Text.Json;
using Npgsql;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Api;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Handoff;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Allocation;

/// <summary>
/// Issue 14 item 4, the shared half: <c>PATCH database/allocations/{instance_id}</c> changes a shared tenant's tier in place — the
/// new tier's connection limit on its logins (on the real pool server), the row's tier and an event — and refuses what it cannot do.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class TierChangeTests(PostgresFixture fixture)
{
    private static readonly CancellationToken None = CancellationToken.None;

    private static async Task<(int Status, JsonElement Body)> PatchAsync(TestApp app, string instanceId, string? body)
    {
        // The in-memory engine runs no orchestration: a change that needs a move is only scheduled (its run is the end-to-end tests').
        await using var engine = await InMemoryEngine.StartAsync(_ => { });
        var functions = ActivatorUtilities.CreateInstance<TierChangeFunctions>(app.Services);
        var (status, _, json) = Http.Read(await functions.ChangeAllocationTier(
            Http.Request("PATCH", $"/api/database/allocations/{instanceId}", body), instanceId, engine.Client, None));
        return (status, json);
    }

    private static string TierBody(string tier) => Http.Json(new { plan_tier = tier });

    private async Task<(AllocationOutcome.Allocated Tenant, TestServer Server)> AllocateAsync(TestApp app, string tier = "standard")
    {
        var server = fixture.Pools[1];
        await app.AddPoolAsync(server, 10);
        var tenant = Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(
            new AllocationRequest(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), tier), None));
        return (tenant, server);
    }

    private static Task<int> LimitAsync(TestServer server, string role) =>
        server.ScalarAsync<int>($"SELECT coalesce((SELECT rolconnlimit FROM pg_roles WHERE rolname = '{role}'), -2)");

    [Fact]
    [Trait("Issue", "14")]
    public async Task Patch_SharedToSharedTier_BothLoginsGetTheNewLimitRowAndEventThenSameTierIsANoOp()
    {
        await using var app = await TestApp.StartAsync(fixture);
        var (tenant, server) = await AllocateAsync(app);
        var instance = tenant.Tenant.InstanceId;
        // A rotation makes the second login, so both exist.
        Assert.IsType<PasswordChange.Changed>(await app.Get<PasswordRotation>().ChangePasswordAsync(instance, None));
        var login = tenant.Tenant.DbUser;
        Assert.Equal(40, await LimitAsync(server, login));
        Assert.Equal(40, await LimitAsync(server, login + "_b"));

        var (status, body) = await PatchAsync(app, instance.ToString(), TierBody("professional"));

        Assert.Equal(200, status);
        Assert.Equal("professional", body.GetProperty("plan_tier").GetString());
        Assert.Equal(60, await LimitAsync(server, login));
        Assert.Equal(60, await LimitAsync(server, login + "_b"));
        Assert.Equal("professional", await app.CatalogScalarAsync<string>("SELECT plan_tier FROM tenant_databases WHERE instance_id = @i", ("i", instance)));
        Assert.Equal("plan_tier standard -> professional", await app.CatalogScalarAsync<string>(
            "SELECT string_agg(reason, ',') FROM pool_events WHERE instance_id = @i AND event = @e", ("i", instance), ("e", PoolEventNames.TierChanged)));

        var (again, againBody) = await PatchAsync(app, instance.ToString(), TierBody("professional"));
        Assert.Equal(200, again);
        Assert.Equal("professional", againBody.GetProperty("plan_tier").GetString());
        Assert.Equal(1L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE instance_id = @i AND event = @e",
            ("i", instance), ("e", PoolEventNames.TierChanged)));

        // Down again to a smaller tier.
        Assert.Equal(200, (await PatchAsync(app, instance.ToString(), TierBody("starter"))).Status);
        Assert.Equal(20, await LimitAsync(server, login));
        Assert.Equal(20, await LimitAsync(server, login + "_b"));
    }

    [Fact]
    [Trait("Issue", "14")]
    public async Task Patch_UnknownTierDedicatedTierReleasedUnknownInstance_ProblemsAndNothingChanged()
    {
        await using var app = await TestApp.StartAsync(fixture);
        var (tenant, server) = await AllocateAsync(app);
        var instance = tenant.Tenant.InstanceId.ToString();

        var (unknown, unknownBody) = await PatchAsync(app, instance, TierBody("gold"));
        Assert.Equal(400, unknown);
        Assert.Equal(Problems.TypePrefix + "validation", unknownBody.GetProperty("type").GetString());
        Assert.True(unknownBody.GetProperty("errors").TryGetProperty("plan_tier", out _));
        Assert.Equal(400, (await PatchAsync(app, instance, "{}")).Status);
        Assert.Equal(400, (await PatchAsync(app, instance, null)).Status);
        Assert.Equal(400, (await PatchAsync(app, "not-a-uuid", TierBody("starter"))).Status);

        // To a dedicated tier: not in place but by a move (the route answers 202 with its run: MoveEndToEndTests); nothing changed here.
        Assert.IsType<TierChangeOutcome.NeedsMove>(await app.Get<TierChangeService>().ChangeAsync(tenant.Tenant.InstanceId,
            new TierChangeRequest("premium"), "test", None));
        Assert.Equal(40, await LimitAsync(server, tenant.Tenant.DbUser));
        Assert.Equal("standard", await app.CatalogScalarAsync<string>("SELECT plan_tier FROM tenant_databases WHERE instance_id = @i", ("i", tenant.Tenant.InstanceId)));

        var (nobody, nobodyBody) = await PatchAsync(app, Guid.NewGuid().ToString(), TierBody("starter"));
        Assert.Equal(404, nobody);
        Assert.Equal(Problems.TypePrefix + "allocation-not-found", nobodyBody.GetProperty("type").GetString());

        await app.Allocation.ReleaseAsync(tenant.Tenant.InstanceId, "test", None);
        var (released, releasedBody) = await PatchAsync(app, instance, TierBody("starter"));
        Assert.Equal(409, released);
        Assert.Equal(Problems.TypePrefix + "allocation-not-ready", releasedBody.GetProperty("type").GetString());
        Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE event = @e", ("e", PoolEventNames.TierChanged)));
    }

    [Fact]
    [Trait("Issue", "14")]
    public async Task Patch_CatalogRefusesTheRowAfterThePoolChanged_OldLimitPutBackAndTierKept()
    {
        await using var app = await TestApp.StartAsync(fixture);
        var (tenant, server) = await AllocateAsync(app);
        // The catalog fails the tier's write (a real error from the catalog server, after the pool's DDL ran).
        await using (var cmd = app.Catalog.CreateCommand("""
            CREATE FUNCTION refuse_tier() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'tier writes refused'; END $$;
            CREATE TRIGGER refuse_tier BEFORE UPDATE OF plan_tier ON tenant_databases FOR EACH ROW EXECUTE FUNCTION refuse_tier();
            """))
        {
            await cmd.ExecuteNonQueryAsync();
        }

        await Assert.ThrowsAsync<PostgresException>(() => PatchAsync(app, tenant.Tenant.InstanceId.ToString(), TierBody("professional")));

        Assert.Equal(40, await LimitAsync(server, tenant.Tenant.DbUser));
        Assert.Equal("standard", await app.CatalogScalarAsync<string>("SELECT plan_tier FROM tenant_databases WHERE instance_id = @i", ("i", tenant.Tenant.InstanceId)));
        Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE event = @e", ("e", PoolEventNames.TierChanged)));
    }
}
