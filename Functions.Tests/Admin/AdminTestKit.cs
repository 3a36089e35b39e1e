using System.Text.Json;
using Microsoft.AspNetCore.Http;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Api;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Secrets;
using TenantDb.Functions.Tests.Infrastructure;
using TenantDb.Functions.Administration;
using TenantDb.Functions.Drivers;

namespace TenantDb.Functions.Tests.Admin;

/// <summary>Shared arrangements of the admin and timer tests: the functions over a test app, requests, allocations, process servers.</summary>
internal static class AdminTestKit
{
    public static AdminFunctions AdminApi(TestApp app) => new(app.Get<PoolReadService>(), app.Get<PoolLifecycleService>(), app.Get<PoolRegistrationService>(), app.Get<HealthService>());

    public static AdminFunctions AdminApi(OfflineApp app) => new(app.Get<PoolReadService>(), app.Get<PoolLifecycleService>(), app.Get<PoolRegistrationService>(), app.Get<HealthService>());

    public static HttpRequest Get(string path, string? query = null)
    {
        var req = Http.Request("GET", path, functionKey: null);
        req.Headers["x-functions-key"] = "admin-key";
        if (query is not null)
        {
            req.QueryString = new QueryString(query);
        }

        return req;
    }

    public static HttpRequest Send(string method, string path, string? body = null, string? id = null)
    {
        var req = Http.Request(method, path, body, functionKey: "admin-key");
        if (id is not null)
        {
            req.RouteValues["id"] = id;
        }

        return req;
    }

    public static AllocationRequest Tenant() => new(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "standard");

    public static async Task<AllocationOutcome.Allocated> AllocateOkAsync(TestApp app) =>
        Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(Tenant(), CancellationToken.None));

    public static string[] Strings(JsonElement array, string property) =>
        array.EnumerateArray().Select(e => e.GetProperty(property).GetString()!).ToArray();

    /// <summary>
    /// A real server made by the process driver (as provisioning would: marked with the app's catalog id unless another
    /// <paramref name="catalogId"/> is given), not yet in the catalog.
    /// </summary>
    public static async Task<(PoolServerSpec Spec, ServerEndpoint Endpoint)> CreateProcessServerAsync(TestApp app, string prefix, Guid? catalogId = null)
    {
        var spec = new PoolServerSpec($"{prefix}-{Guid.NewGuid().ToString("N")[..8]}", "shared", "tenantdb_admin", PasswordGenerator.Generate(40), 1, "512m",
            CatalogId: catalogId ?? await app.Get<CatalogIdentity>().GetAsync(CancellationToken.None));
        var endpoint = await app.Get<PoolProvisioners>().For("process").CreateAsync(spec, CancellationToken.None);
        return (spec, endpoint);
    }

    public static PoolServerRef RefOf(PoolServerSpec spec, ServerEndpoint endpoint) =>
        new(spec.Name, endpoint.ResourceId, endpoint.Host, endpoint.Port, spec.AdminUser, spec.AdminPassword);

    /// <summary>Settings for a test app whose process driver works in a folder of its own and whose other drivers find nothing.</summary>
    public static Dictionary<string, string?> IsolatedDrivers(params (string Key, string Value)[] more)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Provisioning:Driver"] = "process",
            ["Provisioning:Process:DataRoot"] = Path.Combine(PostgresFixture.Root, $"admin-pools-{Guid.NewGuid().ToString("N")[..8]}"),
            // Unique owner label and no engine: a cleanup here never sees anyone else's Docker servers.
            ["Provisioning:Owner"] = $"admin-test-{Guid.NewGuid().ToString("N")[..8]}",
            ["Provisioning:Docker:Endpoint"] = $"unix://{Path.Combine(PostgresFixture.Root, "no-docker.sock")}",
        };
        foreach (var (key, value) in more)
        {
            settings[key] = value;
        }

        return settings;
    }
}
