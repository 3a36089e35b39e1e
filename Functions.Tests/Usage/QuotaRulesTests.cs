using Microsoft.Extensions.Configuration;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Tests.Usage;

/// <summary>The quota rules without a server: the state a size comes to against a tier, and the tier's options as configured.</summary>
[Trait("Category", Tier.Unit)]
public sealed class QuotaRulesTests
{
    private const long MiB = 1024 * 1024;

    [Theory]
    [InlineData(null, 100L * MiB, "ok")]                    // no size limit
    [InlineData(10, null, null)]                          // not measured yet: keeps its state
    [InlineData(10, 8L * MiB, "ok")]                      // exactly 80 %: not past it
    [InlineData(10, 8L * MiB + 1, "warning")]
    [InlineData(10, 10L * MiB, "warning")]                // exactly the limit: not past it
    [InlineData(10, 10L * MiB + 1, "read_only")]
    public void For_SizeAgainstTier_GivesTheState(int? maxSizeMb, long? size, string? expected)
    {
        Assert.Equal(expected, QuotaStates.For(size, new PlanTier { MaxSizeMb = maxSizeMb }, 80));
    }

    [Fact]
    public void Bind_OldConnectionLimit_StillSetsMaxConnections_AndMaxConnectionsWinsWhenBothAreSet()
    {
        var options = Bind(new Dictionary<string, string?>
        {
            ["Pools:Tiers:starter:ConnectionLimit"] = "7",
            ["Pools:Tiers:standard:ConnectionLimit"] = "8",
            ["Pools:Tiers:standard:MaxConnections"] = "9",
            ["Pools:Tiers:standard:MaxSizeMb"] = "512",
            ["Pools:QuotaWarnAt"] = "90",
        });

        Assert.Equal(7, options.Tiers["starter"].MaxConnections);
        Assert.Equal(9, options.Tiers["standard"].MaxConnections);
        Assert.Equal(512L * MiB, options.Tiers["standard"].MaxSizeBytes);
        Assert.Null(options.Tiers["professional"].MaxSizeMb);
        Assert.Equal(60, options.Tiers["professional"].MaxConnections);
        Assert.Equal(90, options.QuotaWarnAt);
        Assert.Equal(80, new PoolsOptions().QuotaWarnAt);
    }

    private static PoolsOptions Bind(Dictionary<string, string?> settings)
    {
        var options = new PoolsOptions();
        new ConfigurationBuilder().AddInMemoryCollection(settings).Build().GetSection(PoolsOptions.Section).Bind(options);
        return options;
    }
}
