using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using TenantDb.Functions;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Secrets;

namespace TenantDb.Bench.Sections;

/// <summary>
/// Placement at scale: a synthetic catalog of <see cref="BenchOptions.Pools"/> pools and about <see cref="BenchOptions.Tenants"/>
/// tenant rows (filled with <c>INSERT … SELECT generate_series</c>), and the real reserve statement
/// (<see cref="TenantStore.ReserveAsync(ValidAllocationRequest, string, string, bool, PlacementStrategy, bool, CancellationToken)"/>)
/// timed single-caller and with 16 callers, for both strategies. What it reserves accumulates (a slot and a creating tenant row
/// each, as real growth does); nothing is made on any server (the pools are registered rows only).
/// </summary>
public static class PlacementAtScale
{
    private const string Section = "placement at scale";
    private const string Key = "placement_at_scale";

    public static async Task RunAsync(Servers servers, BenchOptions options, Report report)
    {
        var catalog = await servers.CreateCatalogDatabaseAsync("placement");
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:Catalog"] = catalog,
            ["Secrets:Key"] = SecretProtector.GenerateKey(),
        }).Build();
        await using var services = new ServiceCollection().AddSingleton<IConfiguration>(config).AddLogging(b => b.SetMinimumLevel(LogLevel.Warning))
            .AddTenantDbServices(config).BuildServiceProvider();
        services.GetRequiredService<CatalogMigrator>().Migrate();
        var tenants = services.GetRequiredService<TenantStore>();

        var fill = Stopwatch.StartNew();
        var (pools, rows, eligible) = await FillAsync(catalog, options.Pools, options.Tenants);
        Console.Error.WriteLine($"bench: placement catalog: {pools} pools ({eligible} in placement), {rows} tenant rows in {fill.Elapsed.TotalSeconds:0} s");
        report.Detail(Key, "catalog", new JsonObject
        {
            ["pools"] = pools, ["pools_in_placement"] = eligible, ["tenant_rows"] = rows, ["fill_s"] = Math.Round(fill.Elapsed.TotalSeconds, 1),
            ["reservations"] = "accumulate: each call takes a slot and inserts a creating tenant row, as growth does",
        });

        // The floor under any reserve: one committed single-row write on the same catalog (a round trip and a WAL flush).
        await using (var source = NpgsqlDataSource.Create(catalog))
        {
            await using (var create = source.CreateCommand("CREATE TABLE bench_commit_floor (id int PRIMARY KEY, n bigint); INSERT INTO bench_commit_floor VALUES (1, 0)"))
            {
                await create.ExecuteNonQueryAsync();
            }

            var floorLoad = new Load("commit floor, single caller", 1, options.PlacementCalls);
            var floor = await Latency.MeasureAsync(floorLoad, async _ =>
            {
                await using var update = source.CreateCommand("UPDATE bench_commit_floor SET n = n + 1 WHERE id = 1");
                return await update.ExecuteNonQueryAsync() == 1;
            });
            report.Add(Section, Key, floorLoad.Name, floor, null, null, null,
                "one committed single-row UPDATE on the same catalog: the round trip and WAL flush every reserve pays too");
        }

        foreach (var strategy in new[] { PlacementStrategy.FillFirst, PlacementStrategy.Spread })
        {
            var plan = await tenants.ExplainPlacementAsync(strategy, analyze: true, CancellationToken.None);
            Console.Error.WriteLine($"bench: placement plan ({strategy}):\n{plan}");
            report.Detail(Key, $"plan_{strategy}", plan);
            foreach (var callers in new[] { 1, 16 })
            {
                var load = new Load(callers == 1 ? $"{strategy}, single caller" : $"{strategy}, 16 callers", callers, options.PlacementCalls);
                // A few untimed calls first: the plan is cached and the connections are open, as in a running app.
                await Latency.MeasureAsync(load with { Operations = callers * 2 }, _ => ReserveAsync(tenants, strategy));
                var result = await Latency.MeasureAsync(load, _ => ReserveAsync(tenants, strategy));
                Console.Error.WriteLine($"bench:   {load.Name}: p50 {result.P50:0.00} ms, p99 {result.P99:0.00} ms");
                report.Add(Section, Key, load.Name, result, null, null,
                    callers == 1 ? new Goal("p99 ≤ 5 ms", result.P99 <= 5) : null,
                    callers == 1 && strategy == PlacementStrategy.FillFirst
                        ? $"{pools} pools ({eligible} in placement), {rows} tenant rows; the reserve statement only (no instance lock, no DDL)" : null);
            }
        }
    }

    private static async Task<bool> ReserveAsync(TenantStore tenants, PlacementStrategy strategy)
    {
        var instance = Guid.NewGuid();
        var request = new ValidAllocationRequest(instance, Guid.NewGuid(), "standard", new PlanTier());
        var name = $"odoo_{instance:N}"[..30];
        return await tenants.ReserveAsync(request, name, name, dedicated: false, strategy, skipLocked: true, CancellationToken.None) is not null;
    }

    /// <summary>
    /// 70 % of the pools full, 20 % active with room (a spread of fill levels and priorities), 10 % draining, in error or
    /// unhealthy; tenant rows as many as the counters say (about <paramref name="tenants"/> in all), so counters equal rows.
    /// </summary>
    private static async Task<(long Pools, long Rows, long Eligible)> FillAsync(string catalog, int pools, int tenants)
    {
        var max = Math.Max(2, tenants / Math.Max(1, pools) * 6 / 5);
        await using var conn = new NpgsqlConnection(catalog);
        await conn.OpenAsync();
        await using (var cmd = new NpgsqlCommand($"""
            SET synchronous_commit = off;
            INSERT INTO db_servers (name, host, port, server_type, status, health_status, current_instances, max_instances, priority,
                                    driver, admin_user, admin_password_encrypted)
            SELECT 'synthetic-' || g, '127.0.0.1', 5432, 'shared',
                   CASE WHEN g % 10 < 7 THEN 'full' WHEN g % 10 < 9 THEN 'active' ELSE (ARRAY['draining', 'error', 'active'])[g % 3 + 1] END,
                   CASE WHEN g % 10 = 9 AND g % 3 = 2 THEN 'unhealthy' ELSE 'healthy' END,
                   CASE WHEN g % 10 < 7 THEN {max} WHEN g % 10 < 9 THEN (g * 7919) % {max} ELSE {max} / 3 END,
                   {max}, 100 + (g % 3) * 10, 'registered', 'postgres', 'synthetic'
            FROM generate_series(1, {pools}) g;
            INSERT INTO tenant_databases (instance_id, customer_id, plan_tier, db_server_id, db_name, db_user, status, ready_at)
            SELECT gen_random_uuid(), gen_random_uuid(), 'standard', s.id, 'odoo_' || s.id || '_' || n, 'odoo_' || s.id || '_' || n, 'ready', now()
            FROM db_servers s, generate_series(1, s.current_instances) n;
            """, conn))
        {
            cmd.CommandTimeout = 600;
            await cmd.ExecuteNonQueryAsync();
        }

        foreach (var table in new[] { "db_servers", "tenant_databases" })
        {
            await using var vacuum = new NpgsqlCommand($"VACUUM ANALYZE {table}", conn) { CommandTimeout = 600 };
            await vacuum.ExecuteNonQueryAsync();
        }

        await using var count = new NpgsqlCommand("""
            SELECT (SELECT count(*) FROM db_servers), (SELECT count(*) FROM tenant_databases),
                   (SELECT count(*) FROM db_servers WHERE server_type = 'shared' AND status = 'active' AND health_status IN ('healthy', 'unknown'))
            """, conn);
        await using var reader = await count.ExecuteReaderAsync();
        await reader.ReadAsync();
        return (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2));
    }
}
