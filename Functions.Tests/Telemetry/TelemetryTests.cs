using System.Diagnostics;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using TenantDb.Functions.Administration;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Telemetry;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Telemetry;

/// <summary>
/// The app's telemetry through the same registration both hosts use, read by an in-memory exporter: the allocation meters
/// after real allocations, the pool gauges after a real health sweep, and Npgsql's spans of the catalog statements and the
/// pool DDL, none of which may carry a password or a SCRAM verifier.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class TelemetryTests(PostgresFixture fixture)
{
    private sealed class Exported
    {
        public List<Activity> Spans { get; } = [];
        public List<MetricSnapshot> Metrics { get; } = [];
    }

    private static async Task<(TestApp App, Exported Exported)> StartAsync(PostgresFixture fixture, IDictionary<string, string?>? settings = null)
    {
        var exported = new Exported();
        var app = await TestApp.StartAsync(fixture, settings, configure: services => services
            .ConfigureOpenTelemetryTracerProvider(b => b.AddInMemoryExporter(exported.Spans))
            .ConfigureOpenTelemetryMeterProvider(b => b.AddInMemoryExporter(exported.Metrics)));
        // No host starts the providers here: resolving them starts their listeners.
        app.Get<TracerProvider>();
        app.Get<MeterProvider>();
        return (app, exported);
    }

    private static IEnumerable<MetricPoint> Points(Exported exported, string name)
    {
        foreach (var point in exported.Metrics.LastOrDefault(m => m.Name == name)?.MetricPoints ?? [])
        {
            yield return point;
        }
    }

    private static string? Tag(MetricPoint point, string key)
    {
        foreach (var tag in point.Tags)
        {
            if (tag.Key == key)
            {
                return tag.Value?.ToString();
            }
        }

        return null;
    }

    private static void Flush(TestApp app, Exported exported)
    {
        exported.Metrics.Clear();
        Assert.True(app.Get<MeterProvider>().ForceFlush(10_000));
        Assert.True(app.Get<TracerProvider>().ForceFlush(10_000));
    }

    [Fact]
    public async Task Allocate_WithInMemoryExporter_CountsOutcomesAndRecordsLatency()
    {
        var (app, exported) = await StartAsync(fixture);
        await using var _ = app;
        await app.AddPoolAsync(fixture.Pools[1], 10);

        Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(
            new AllocationRequest(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "standard"), CancellationToken.None));
        Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(
            new AllocationRequest(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "standard"), CancellationToken.None));
        Assert.IsType<AllocationOutcome.Invalid>(await app.Allocation.AllocateAsync(
            new AllocationRequest("not-a-guid", Guid.NewGuid().ToString(), "standard"), CancellationToken.None));
        Flush(app, exported);

        var counts = Points(exported, "tenantdb.allocations").ToDictionary(p => Tag(p, "outcome")!, p => p.GetSumLong());
        Assert.True(counts.GetValueOrDefault("allocated") >= 2, $"allocated counted {counts.GetValueOrDefault("allocated")}");
        Assert.True(counts.GetValueOrDefault("invalid") >= 1, $"invalid counted {counts.GetValueOrDefault("invalid")}");
        var latency = Assert.Single(Points(exported, "tenantdb.allocation.duration"), p => Tag(p, "outcome") == "allocated");
        Assert.True(latency.GetHistogramCount() >= 2);
        Assert.True(latency.GetHistogramSum() > 0, "an allocation that made a database took no time");
        ProofReport.Write($"proof telemetry: allocations_counted={counts.GetValueOrDefault("allocated")} " +
            $"allocate_mean_ms={latency.GetHistogramSum() / latency.GetHistogramCount():F1}");
    }

    [Fact]
    public async Task HealthSweep_WithInMemoryExporter_GaugesReportPoolUtilisationAndHealth()
    {
        var (app, exported) = await StartAsync(fixture);
        await using var _ = app;
        var pool = await app.AddPoolAsync(fixture.Pools[1], 10);
        await app.Allocation.AllocateAsync(new AllocationRequest(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "standard"), CancellationToken.None);

        Flush(app, exported);
        Assert.DoesNotContain(Points(exported, "tenantdb.pool.utilization"), p => Tag(p, "pool") == pool.Name);

        await app.Get<HealthService>().SweepAsync(CancellationToken.None);
        Flush(app, exported);

        var utilisation = Assert.Single(Points(exported, "tenantdb.pool.utilization"), p => Tag(p, "pool") == pool.Name);
        Assert.Equal(0.1, utilisation.GetGaugeLastValueDouble(), 3);
        Assert.Contains(Points(exported, "tenantdb.pools.health"), p => Tag(p, "health") == "healthy" && p.GetGaugeLastValueLong() >= 1);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task HealthSweep_UsageGauges_PerPoolAlways_PerTenantSizeOnlyWhenOptedIn(bool perTenant)
    {
        // A 1 MiB limit: the empty database (~7.5 MiB) is over quota at once.
        var (app, exported) = await StartAsync(fixture, new Dictionary<string, string?>
        {
            ["Pools:WarmStock"] = "0",
            ["Pools:Tiers:starter:MaxSizeMb"] = "1",
            ["Telemetry:PerTenantMetrics"] = perTenant ? "true" : "false",
        });
        await using var _ = app;
        var pool = await app.AddPoolAsync(fixture.Pools[1], 10);
        var allocated = Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(
            new AllocationRequest(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "starter"), CancellationToken.None));
        await app.Allocation.AllocateAsync(new AllocationRequest(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "standard"), CancellationToken.None);

        await app.Get<HealthService>().SweepAsync(CancellationToken.None);
        Flush(app, exported);

        var stored = Assert.Single(Points(exported, "tenantdb.pool.stored_bytes"), p => Tag(p, "pool") == pool.Name).GetGaugeLastValueLong();
        Assert.Equal(await app.CatalogScalarAsync<long>("SELECT stored_bytes FROM db_servers WHERE id = @id", ("id", pool.Id)), stored);
        var max = Assert.Single(Points(exported, "tenantdb.pool.max_connections"), p => Tag(p, "pool") == pool.Name).GetGaugeLastValueLong();
        Assert.Equal(await app.CatalogScalarAsync<int>("SELECT max_connections FROM db_servers WHERE id = @id", ("id", pool.Id)), (int)max);
        Assert.Single(Points(exported, "tenantdb.pool.connections"), p => Tag(p, "pool") == pool.Name);
        var over = Points(exported, "tenantdb.pool.tenants_over_quota").Where(p => Tag(p, "pool") == pool.Name)
            .ToDictionary(p => Tag(p, "quota_state")!, p => p.GetGaugeLastValueLong());
        Assert.Equal(1L, over["read_only"]);
        Assert.Equal(0L, over["warning"]);
        var sizes = Points(exported, "tenantdb.tenant.size").Where(p => Tag(p, "pool") == pool.Name).ToList();
        if (perTenant)
        {
            Assert.Equal(2, sizes.Count);
            var size = Assert.Single(sizes, p => Tag(p, "instance_id") == allocated.Tenant.InstanceId.ToString()).GetGaugeLastValueLong();
            Assert.Equal(await app.CatalogScalarAsync<long>("SELECT size_bytes FROM tenant_usage WHERE tenant_id = @id", ("id", allocated.Tenant.Id)), size);
        }
        else
        {
            Assert.Empty(sizes);
        }
    }

    [Fact]
    public async Task Allocate_Spans_CoverCatalogAndPoolDdlAndCarryNoSecret()
    {
        var (app, exported) = await StartAsync(fixture);
        await using var _ = app;
        await app.AddPoolAsync(fixture.Pools[1], 10);

        var allocated = Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(
            new AllocationRequest(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "standard"), CancellationToken.None));
        Flush(app, exported);

        var allocate = Assert.Single(exported.Spans, s => s.Source.Name == AllocatorTelemetry.Name && s.DisplayName == "allocate"
            && Equals(s.GetTagItem("tenantdb.instance_id"), allocated.Tenant.InstanceId));
        var statements = exported.Spans.Where(s => s.Source.Name == "Npgsql" && s.TraceId == allocate.TraceId).ToList();
        var texts = statements.Select(s => s.GetTagItem("db.query.text") as string ?? "").ToList();
        Assert.Contains(texts, t => t.Contains("tenant_databases", StringComparison.Ordinal));
        // The login's DDL is traced, with its password literal redacted.
        Assert.Contains(texts, t => t.Contains("PASSWORD " + SecretRedaction.Redacted, StringComparison.Ordinal));

        var password = allocated.Password!.Reveal();
        var leaks = exported.Spans
            .SelectMany(s => s.TagObjects.Select(t => t.Value?.ToString() ?? "").Append(s.DisplayName)
                .Concat(s.Events.SelectMany(e => e.Tags.Select(t => t.Value?.ToString() ?? ""))))
            .Count(v => v.Contains("SCRAM-SHA-256$", StringComparison.Ordinal) || v.Contains(password, StringComparison.Ordinal));
        Assert.True(leaks == 0, $"{leaks} span attribute(s) carry a verifier or the password");
        ProofReport.Write($"proof telemetry: traced_statements={statements.Count} secrets_in_spans={leaks}");
    }

    [Theory]
    [InlineData("PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy'")]
    [InlineData("ALTER ROLE x LOGIN password 'it''s secret' VALID UNTIL 'infinity'")]
    [InlineData("CREATE ROLE x LOGIN ENCRYPTED PASSWORD E'abc'")]
    public void Redact_PasswordLiterals_LeaveNoSecret(string statement)
    {
        var redacted = SecretRedaction.Redact(statement);

        Assert.Contains(SecretRedaction.Redacted, redacted, StringComparison.Ordinal);
        Assert.DoesNotContain("SCRAM", redacted, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", redacted, StringComparison.Ordinal);
        Assert.DoesNotContain("abc", redacted, StringComparison.Ordinal);
    }
}
