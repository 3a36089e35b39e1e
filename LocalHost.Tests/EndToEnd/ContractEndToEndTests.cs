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
}
