using System.Text.Json;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>Steps of the platform's flows over HTTP that several end-to-end tests share: a tenant allocated and claimed, its look-up, a 202 run waited for.</summary>
internal static class TenantFlows
{
    /// <summary>How long a lifecycle run (a move, a backup, a restore, a tier change) may take on a loaded machine.</summary>
    public static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(300);

    /// <summary>A new standard tenant, its credentials claimed (its password added to the host's secrets to look for).</summary>
    public static async Task<JsonElement> AllocateClaimedAsync(this AllocatorHost host, Guid instance)
    {
        var (status, allocated) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate",
            body: new { instance_id = instance.ToString(), customer_id = Guid.NewGuid().ToString(), plan_tier = "standard" });
        Assert.True(status == 200, $"allocate answered {status}");
        var (claimed, credentials) = await host.SendAsync(HttpMethod.Post, new Uri(allocated.GetProperty("credentials").GetProperty("claim_url").GetString()!).PathAndQuery);
        Assert.Equal(200, claimed);
        host.Seen.Add(credentials.GetProperty("db_password").GetString()!);
        return credentials;
    }

    public static async Task<JsonElement> LookUpAsync(this AllocatorHost host, Guid instance)
    {
        var (status, body) = await host.SendAsync(HttpMethod.Get, $"/api/database/allocations/{instance}");
        Assert.Equal(200, status);
        return body;
    }

    /// <summary>The pool the instance's live database is on, from the catalog.</summary>
    public static async Task<long> PoolOfAsync(this AllocatorHost host, Guid instance) =>
        await host.ScalarAsync($"SELECT db_server_id FROM tenant_databases WHERE instance_id = '{instance}' AND status IN ('ready', 'released')");

    /// <summary>A request answered 202 whose run is waited for (no key in its status URL); the run's output.</summary>
    public static async Task<JsonElement> RunToOutputAsync(this AllocatorHost host, HttpMethod method, string path, string key, object? body = null)
    {
        using var request = host.Request(method, path, key, body);
        using var response = await host.Client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == 202, $"{method} {path} answered {(int)response.StatusCode}: {text}");
        var location = response.Headers.Location!.ToString();
        Assert.DoesNotContain(AllocatorHost.MasterKey, location, StringComparison.Ordinal);
        Assert.DoesNotContain(AllocatorHost.MasterKey, text, StringComparison.Ordinal);
        var done = await host.WaitForOrchestrationAsync(location, RunTimeout);
        Assert.True(done.GetProperty("runtimeStatus").GetString() == "Completed", done.ToString());
        return done.GetProperty("output");
    }
}
