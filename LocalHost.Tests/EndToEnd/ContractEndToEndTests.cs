using System.Text.Json;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>Issue 12 through a real LocalHost: the health endpoint, and the platform's contract kept.</summary>
[Trait("Category", Tier.EndToEnd)]
public sealed class ContractEndToEndTests
{
    private static async Task<(int Status, System.Net.Http.Headers.HttpResponseHeaders Headers, string? MediaType, JsonElement Body)> GetAsync(
        AllocatorHost host, string path, string? key)
    {
        using var request = host.Request(HttpMethod.Get, path, key);
        using var response = await host.Client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        using var doc = JsonDocument.Parse(text);
        return ((int)response.StatusCode, response.Headers, response.Content.Headers.ContentType?.MediaType, doc.RootElement.Clone());
    }

    [Fact]
    public async Task Healthz_Anonymous_200ThenCatalogStopped_503NamingCatalog()
    {
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string> { ["Healthz__Timeout"] = "00:00:02" });

        var up = await GetAsync(host, "/api/healthz", key: null);

        Assert.Equal(200, up.Status);
        Assert.True(up.Headers.CacheControl?.NoStore, "healthz answers Cache-Control: no-store");
        Assert.Equal("healthy", up.Body.GetProperty("status").GetString());
        Assert.Equal("ok", up.Body.GetProperty("checks").GetProperty("catalog").GetString());
        Assert.Equal("ok", up.Body.GetProperty("checks").GetProperty("task_hub").GetString());

        await host.StopServerAsync(host.CatalogDataDir, immediate: true);
        var started = System.Diagnostics.Stopwatch.StartNew();
        var down = await GetAsync(host, "/api/healthz", key: null);
        var elapsed = started.Elapsed;
        Console.WriteLine($"healthz with the catalog stopped answered in {elapsed.TotalMilliseconds:F0} ms");

        Assert.Equal(503, down.Status);
        Assert.True(elapsed < TimeSpan.FromSeconds(10), $"healthz with the catalog down took {elapsed}");
        Assert.NotNull(down.Headers.RetryAfter);
        Assert.True(down.Headers.CacheControl?.NoStore, "healthz answers Cache-Control: no-store");
        Assert.Equal("application/problem+json", down.MediaType);
        Assert.Equal("urn:tenantdb:problem:unhealthy", down.Body.GetProperty("type").GetString());
        Assert.Equal("unavailable", down.Body.GetProperty("checks").GetProperty("catalog").GetString());
        Assert.Equal("ok", down.Body.GetProperty("checks").GetProperty("task_hub").GetString());
        var text = down.Body.GetRawText();
        var catalog = new Npgsql.NpgsqlConnectionStringBuilder(host.CatalogConnectionString);
        foreach (var leak in new[] { catalog.Password!, "Host=", catalog.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "Exception", "tenantdb_catalog" })
        {
            Assert.DoesNotContain(leak, text, StringComparison.Ordinal);
        }

        await host.StartServerAsync(host.CatalogDataDir);
        var back = await GetAsync(host, "/api/healthz", key: null);
        Assert.Equal(200, back.Status);
    }

    [Fact]
    public async Task InlinePassword_AllocatePollAllocateAgain_FirstPasswordOnceWithServerId_ThenNone()
    {
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string> { ["Allocation__InlinePassword"] = "true" });
        var instance = Guid.NewGuid();
        var body = new { instance_id = instance.ToString(), customer_id = Guid.NewGuid().ToString(), plan_tier = "standard" };

        var (status, accepted) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", body: body);
        Assert.Equal(202, status);
        var done = await host.WaitForOrchestrationAsync(accepted.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!,
            TimeSpan.FromSeconds(120));
        Assert.Equal("Completed", done.GetProperty("runtimeStatus").GetString());
        Assert.False(done.GetProperty("output").GetProperty("allocation").TryGetProperty("db_password", out _), "an orchestration's output never holds the password");

        var first = await PostAsync(host, "/api/database/allocate", body);
        Assert.Equal(200, first.Status);
        Assert.True(first.Headers.CacheControl?.NoStore, "an answer with a password carries Cache-Control: no-store");
        Assert.True(first.Body.TryGetProperty("db_password", out _), "the first 200 after the 202 carries db_password");
        var serverId = first.Body.GetProperty("db_server_id").GetInt64();
        Assert.Equal(await host.ScalarAsync($"SELECT db_server_id FROM tenant_databases WHERE instance_id = '{instance}' AND status = 'ready'"), serverId);
        await using (var conn = new Npgsql.NpgsqlConnection(TenantInvariants.ConnectionString(first.Body)))
        {
            await conn.OpenAsync();
            await using var cmd = new Npgsql.NpgsqlCommand("SELECT current_database()", conn);
            Assert.Equal(first.Body.GetProperty("db_name").GetString(), (string?)await cmd.ExecuteScalarAsync());
        }

        var second = await PostAsync(host, "/api/database/allocate", body);
        Assert.Equal(200, second.Status);
        Assert.False(second.Body.TryGetProperty("db_password", out _), "the password is taken from the handoff once");
        Assert.Equal(serverId, second.Body.GetProperty("db_server_id").GetInt64());
        var (claimStatus, _) = await host.SendAsync(HttpMethod.Post, $"/api/database/credentials/{instance}/claim");
        Assert.Equal(410, claimStatus);

        var lookup = await GetAsync(host, $"/api/database/allocations/{instance}", AllocatorHost.FunctionKey);
        Assert.Equal(200, lookup.Status);
        Assert.Equal(serverId, lookup.Body.GetProperty("db_server_id").GetInt64());
        Assert.False(lookup.Body.TryGetProperty("db_password", out _), "a look-up never carries the password");

        var pools = await GetAsync(host, "/api/database/admin/pools", AllocatorHost.MasterKey);
        Assert.Equal(200, pools.Status);
        Assert.Equal(pools.Body.GetProperty("total").GetInt64(), pools.Body.GetProperty("total_count").GetInt64());
        var pool = Assert.Single(pools.Body.GetProperty("pools").EnumerateArray());
        Assert.Equal(serverId, pool.GetProperty("id").GetInt64());
        Assert.Equal(pool.GetProperty("utilization_percent").GetDouble(), pool.GetProperty("capacity_percentage").GetDouble());
        Assert.True(pool.GetProperty("capacity_percentage").GetDouble() > 0);
        var stats = await GetAsync(host, "/api/database/admin/stats", AllocatorHost.MasterKey);
        Assert.Equal(200, stats.Status);
        Assert.Equal(stats.Body.GetProperty("utilization_percent").GetDouble(), stats.Body.GetProperty("capacity_percentage").GetDouble());
        Assert.Equal(1, stats.Body.GetProperty("total_tenants").GetInt32());
        Assert.True(stats.Body.GetProperty("by_server_type").GetProperty("shared").TryGetProperty("capacity_percentage", out _));
    }

    private static async Task<(int Status, System.Net.Http.Headers.HttpResponseHeaders Headers, JsonElement Body)> PostAsync(AllocatorHost host, string path, object body)
    {
        using var request = host.Request(HttpMethod.Post, path, AllocatorHost.FunctionKey, body);
        using var response = await host.Client.SendAsync(request);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return ((int)response.StatusCode, response.Headers, doc.RootElement.Clone());
    }
}
