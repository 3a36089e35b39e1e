using System.Text.Json;

namespace TenantDb.Functions.Tests.Api;

/// <summary>The Worker SDK's functions.metadata is what a host serves: it must carry every route of DESIGN.md §2 and both timers.</summary>
[Trait("Category", Tier.Unit)]
public sealed class FunctionsMetadataTests
{
    private static readonly List<JsonElement> Functions = Load();

    private static List<JsonElement> Load()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "functions.metadata");
        Assert.True(File.Exists(path), $"functions.metadata not found at {path}");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.EnumerateArray().Select(e => e.Clone()).ToList();
    }

    private static IEnumerable<JsonElement> Triggers(string type) =>
        Functions.SelectMany(f => f.GetProperty("bindings").EnumerateArray()).Where(b => b.GetProperty("type").GetString() == type);

    // Every route of DESIGN.md §2.
    public static TheoryData<string, string, string> Routes() => new()
    {
        { "post", "database/allocate", "Function" },
        { "post", "database/provision-dedicated", "Function" },
        { "get", "database/allocations/{instance_id}", "Function" },
        { "delete", "database/allocations/{instance_id}", "Function" },
        { "post", "database/credentials/{instance_id}/claim", "Function" },
        { "post", "database/credentials/{instance_id}/rotate", "Function" },
        { "get", "database/admin/pools", "Admin" },
        { "get", "database/admin/pools/{id}", "Admin" },
        { "get", "database/admin/stats", "Admin" },
        { "post", "database/admin/pools/{id}/health-check", "Admin" },
        { "post", "database/admin/pools/register", "Admin" },
        { "post", "database/admin/pools/{id}/drain", "Admin" },
        { "post", "database/admin/pools/{id}/activate", "Admin" },
        { "delete", "database/admin/pools/{id}", "Admin" },
        { "post", "database/admin/provision-pool", "Admin" },
        { "get", "healthz", "Anonymous" },
        // The dashboard's page holds no data (a browser cannot send the key in a header); its data route takes the admin key.
        { "get", "database/admin/dashboard", "Anonymous" },
        { "get", "database/admin/activity", "Admin" },
        { "get", "openapi.yaml", "Anonymous" },
    };

    [Theory]
    [MemberData(nameof(Routes))]
    public void Metadata_DesignRoute_IsServedWithItsMethodAndAuthLevel(string method, string route, string authLevel)
    {
        var match = Triggers("httpTrigger").Where(b => b.GetProperty("route").GetString() == route
            && b.GetProperty("methods").EnumerateArray().Any(m => string.Equals(m.GetString(), method, StringComparison.OrdinalIgnoreCase))).ToList();

        var binding = Assert.Single(match);
        Assert.Equal(authLevel, binding.GetProperty("authLevel").GetString());
    }

    [Fact]
    public void Metadata_Orchestrations_AreAllPresent()
    {
        var names = Functions.Where(f => f.GetProperty("bindings").EnumerateArray().Any(b => b.GetProperty("type").GetString() == "orchestrationTrigger"))
            .Select(f => f.GetProperty("name").GetString()).ToHashSet();

        Assert.Superset(new HashSet<string?> { "ProvisionPool", "AllocateWhenReady", "ClaimCredentials" }, names);
    }

    [Fact]
    public void Metadata_CredentialHandoffEntity_IsPresent()
    {
        Assert.Contains(Functions, f => f.GetProperty("name").GetString() == "CredentialHandoff"
            && f.GetProperty("bindings").EnumerateArray().Any(b => b.GetProperty("type").GetString() == "entityTrigger"));
    }

    [Fact]
    public void Metadata_Timers_ReadTheirSchedulesFromAppSettings()
    {
        var schedules = Functions.Where(f => f.GetProperty("bindings").EnumerateArray().Any(b => b.GetProperty("type").GetString() == "timerTrigger"))
            .ToDictionary(f => f.GetProperty("name").GetString()!, f => f.GetProperty("bindings").EnumerateArray()
                .Single(b => b.GetProperty("type").GetString() == "timerTrigger").GetProperty("schedule").GetString());

        Assert.Equal("%Sweep:Schedule%", schedules["HealthSweep"]);
        Assert.Equal("%Sweep:CleanupSchedule%", schedules["DailyCleanup"]);
    }
}
