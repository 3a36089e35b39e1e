using System.ComponentModel.DataAnnotations;
using System.Reflection;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Settings;

/// <summary>Every setting is checked when the app starts, nested ones included, and a bad one names its key.</summary>
[Trait("Category", Tier.Unit)]
public sealed class OptionsValidationTests
{
    [Fact]
    public async Task Start_Defaults_Validate()
    {
        await using var app = OfflineApp.Start();

        app.Get<IStartupValidator>().Validate();
    }

    [Theory]
    [InlineData("Pools:Tiers:premium:ConnectionLimit", "0", "Pools:Tiers:premium:ConnectionLimit")]
    [InlineData("Pools:Tiers:starter:MaxInstances", "0", "Pools:Tiers:starter:MaxInstances")]
    [InlineData("Pools:Tiers:starter:Memory", "lots", "Pools:Tiers:starter:Memory")]
    [InlineData("Pools:Tiers:enterprise:Cpu", "0", "Pools:Tiers:enterprise:Cpu")]
    [InlineData("Pools:Tiers:Bad-Name:ConnectionLimit", "5", "Pools:Tiers")]
    [InlineData("Pools:Shared:MaxInstances", "0", "Pools:Shared:MaxInstances")]
    [InlineData("Pools:Shared:Memory", "4 gigabytes", "Pools:Shared:Memory")]
    [InlineData("Pools:ConnectTimeoutSeconds", "0", "Pools:ConnectTimeoutSeconds")]
    [InlineData("Provisioning:Driver", "kubernetes", "Provisioning:Driver")]
    [InlineData("Provisioning:Docker:NetworkMode", "overlay", "Provisioning:Docker:NetworkMode")]
    [InlineData("Provisioning:Docker:Image", "Postgres Latest", "Provisioning:Docker:Image")]
    [InlineData("Provisioning:Swarm:Network", "bad network", "Provisioning:Swarm:Network")]
    [InlineData("Provisioning:Process:DataRoot", "relative/path", "Provisioning:Process:DataRoot")]
    [InlineData("Provisioning:ServerSettings:max_connections; DROP", "1", "Provisioning:ServerSettings")]
    [InlineData("Provisioning:ReadyPollInterval", "00:00:00", "Provisioning:ReadyPollInterval")]
    [InlineData("Provisioning:ReadyTimeout", "-00:00:01", "Provisioning:ReadyTimeout")]
    [InlineData("Provisioning:FirstRetryInterval", "10.00:00:00", "Provisioning:FirstRetryInterval")]
    [InlineData("Allocation:WaitPollInterval", "00:00:00", "Allocation:WaitPollInterval")]
    [InlineData("Allocation:WaitPollInterval", "00:45:00", "Allocation:WaitPollInterval")]
    [InlineData("Allocation:WaitForCapacityTimeout", "400.00:00:00", "Allocation:WaitForCapacityTimeout")]
    [InlineData("Allocation:DuplicateWait", "00:00:00", "Allocation:DuplicateWait")]
    [InlineData("Allocation:ReleaseRetention", "-1.00:00:00", "Allocation:ReleaseRetention")]
    [InlineData("Allocation:StaleCreatingAfter", "00:00:01", "Allocation:StaleCreatingAfter")]
    [InlineData("Allocation:DatabasePrefix", "Odoo-", "Allocation:DatabasePrefix")]
    [InlineData("Sweep:ProbeTimeout", "00:00:00", "Sweep:ProbeTimeout")]
    [InlineData("Sweep:ProbeTimeout", "00:10:00", "Sweep:ProbeTimeout")]
    [InlineData("Sweep:HistoryRetention", "00:00:00", "Sweep:HistoryRetention")]
    [InlineData("Sweep:ErrorPoolRetention", "-00:00:01", "Sweep:ErrorPoolRetention")]
    [InlineData("Cleanup:OrphanGrace", "-1.00:00:00", "Cleanup:OrphanGrace")]
    [InlineData("Handoff:Ttl", "00:00:00", "Handoff:Ttl")]
    [InlineData("Handoff:ClaimRetryInterval", "00:00:00", "Handoff:ClaimRetryInterval")]
    [InlineData("Secrets:RewrapBatchSize", "0", "Secrets:RewrapBatchSize")]
    public async Task Start_BadSetting_FailsNamingTheKey(string key, string value, string named)
    {
        await using var app = OfflineApp.Start(new Dictionary<string, string?> { [key] = value });

        var error = Assert.Throws<OptionsValidationException>(() => app.Get<IStartupValidator>().Validate());

        Assert.Contains(named, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EveryTimeSpanSetting_IsBounded()
    {
        var options = typeof(ServiceRegistration).Assembly.GetTypes()
            .Where(t => t.IsClass && t.Name.EndsWith("Options", StringComparison.Ordinal) && t.Namespace?.StartsWith("TenantDb.Functions", StringComparison.Ordinal) == true);
        var unbounded = options
            .SelectMany(t => t.GetProperties(BindingFlags.Public | BindingFlags.Instance).Select(p => (Type: t, Property: p)))
            .Where(x => x.Property.PropertyType == typeof(TimeSpan) && x.Property.CanWrite)
            .Where(x => x.Property.GetCustomAttribute<RangeAttribute>() is not { OperandType: var operand } || operand != typeof(TimeSpan))
            .Select(x => $"{x.Type.Name}.{x.Property.Name}")
            .ToList();

        Assert.True(unbounded.Count == 0, "TimeSpan settings without [Range(typeof(TimeSpan), min, max)]: " + string.Join(", ", unbounded));
        Assert.Contains(options, t => t.Name == "AllocationOptions");
    }
}
