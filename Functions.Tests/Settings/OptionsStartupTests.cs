using System.ComponentModel.DataAnnotations;
using System.Reflection;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Settings;

/// <summary>Every bad setting stops the app at start-up with an error that names its full key, nested ones included.</summary>
[Trait("Category", Tier.Unit)]
public sealed class OptionsStartupTests
{
    [Fact]
    public async Task Defaults_Validate()
    {
        await using var app = OfflineApp.Start();

        app.Get<IStartupValidator>().Validate();
    }

    [Theory]
    [InlineData("Pools:Tiers:premium:ConnectionLimit", "0", "Pools:Tiers:premium:ConnectionLimit")]
    [InlineData("Pools:Tiers:gold:ConnectionLimit", "-1", "Pools:Tiers:gold:ConnectionLimit")]
    [InlineData("Pools:Tiers:premium:Memory", "lots", "Pools:Tiers:premium:Memory")]
    [InlineData("Pools:Tiers:premium:Cpu", "-1", "Pools:Tiers:premium:Cpu")]
    [InlineData("Pools:Tiers:premium:MaxInstances", "0", "Pools:Tiers:premium:MaxInstances")]
    [InlineData("Pools:Tiers:Bad-Name:ConnectionLimit", "10", "Pools:Tiers")]
    [InlineData("Pools:Shared:MaxInstances", "0", "Pools:Shared:MaxInstances")]
    [InlineData("Pools:Shared:Memory", "4 GB", "Pools:Shared:Memory")]
    [InlineData("Pools:MinFreeSlots", "-1", "Pools:MinFreeSlots")]
    [InlineData("Provisioning:Driver", "kubernetes", "Provisioning:Driver")]
    [InlineData("Provisioning:ProbeTimeout", "00:00:00", "Provisioning:ProbeTimeout")]
    [InlineData("Provisioning:MaxSharedFailedPools", "0", "Provisioning:MaxSharedFailedPools")]
    [InlineData("Provisioning:ServerSettings:max_connections; DROP", "1", "Provisioning:ServerSettings")]
    [InlineData("Allocation:WaitPollInterval", "00:45:00", "Allocation:WaitPollInterval")]
    [InlineData("Allocation:DatabasePrefix", "Odoo-", "Allocation:DatabasePrefix")]
    [InlineData("Pools:ConnectTimeoutSeconds", "0", "Pools:ConnectTimeoutSeconds")]
    [InlineData("Secrets:RewrapBatchSize", "0", "Secrets:RewrapBatchSize")]
    [InlineData("Provisioning:Docker:NetworkMode", "overlay", "Provisioning:Docker:NetworkMode")]
    [InlineData("Provisioning:Docker:Image", "Not An Image", "Provisioning:Docker:Image")]
    [InlineData("Provisioning:Swarm:Network", "bad network", "Provisioning:Swarm:Network")]
    [InlineData("Provisioning:Process:DataRoot", "", "Provisioning:Process:DataRoot")]
    [InlineData("Provisioning:ServerSettings:Max Connections", "10", "Provisioning:ServerSettings:Max Connections")]
    [InlineData("Provisioning:ServerSettings:work_mem", " ", "Provisioning:ServerSettings:work_mem")]
    [InlineData("Allocation:ReleaseRetention", "-00:00:01", "Allocation:ReleaseRetention")]
    [InlineData("Allocation:ReleaseRetention", "3650.00:00:00", "Allocation:ReleaseRetention")]
    [InlineData("Allocation:DuplicateWait", "-00:00:01", "Allocation:DuplicateWait")]
    [InlineData("Allocation:DuplicateWait", "01:00:00", "Allocation:DuplicateWait")]
    [InlineData("Allocation:WaitForCapacityTimeout", "00:00:00", "Allocation:WaitForCapacityTimeout")]
    [InlineData("Allocation:WaitForCapacityTimeout", "30.00:00:00", "Allocation:WaitForCapacityTimeout")]
    [InlineData("Allocation:WaitPollInterval", "00:00:00", "Allocation:WaitPollInterval")]
    [InlineData("Allocation:WaitPollInterval", "-00:00:05", "Allocation:WaitPollInterval")]
    [InlineData("Allocation:WaitPollInterval", "1.00:00:00", "Allocation:WaitPollInterval")]
    [InlineData("Allocation:StaleCreatingAfter", "00:00:00", "Allocation:StaleCreatingAfter")]
    [InlineData("Allocation:StaleCreatingAfter", "30.00:00:00", "Allocation:StaleCreatingAfter")]
    [InlineData("Provisioning:FirstRetryInterval", "00:00:00", "Provisioning:FirstRetryInterval")]
    [InlineData("Provisioning:FirstRetryInterval", "1.00:00:00", "Provisioning:FirstRetryInterval")]
    [InlineData("Provisioning:ReadyPollInterval", "00:00:00", "Provisioning:ReadyPollInterval")]
    [InlineData("Provisioning:ReadyPollInterval", "01:00:00", "Provisioning:ReadyPollInterval")]
    [InlineData("Provisioning:ReadyTimeout", "00:00:00", "Provisioning:ReadyTimeout")]
    [InlineData("Provisioning:ReadyTimeout", "1.00:00:00", "Provisioning:ReadyTimeout")]
    [InlineData("Sweep:ProbeTimeout", "00:00:00", "Sweep:ProbeTimeout")]
    [InlineData("Sweep:ProbeTimeout", "00:10:00", "Sweep:ProbeTimeout")]
    [InlineData("Sweep:ProvisioningStuckAfter", "00:00:00", "Sweep:ProvisioningStuckAfter")]
    [InlineData("Sweep:ProvisioningStuckAfter", "31.00:00:00", "Sweep:ProvisioningStuckAfter")]
    [InlineData("Sweep:ErrorPoolRetention", "-00:00:01", "Sweep:ErrorPoolRetention")]
    [InlineData("Sweep:ErrorPoolRetention", "3650.00:00:00", "Sweep:ErrorPoolRetention")]
    [InlineData("Sweep:HistoryRetention", "00:00:00", "Sweep:HistoryRetention")]
    [InlineData("Sweep:HistoryRetention", "9999.00:00:00", "Sweep:HistoryRetention")]
    [InlineData("Cleanup:OrphanGrace", "-00:00:01", "Cleanup:OrphanGrace")]
    [InlineData("Cleanup:OrphanGrace", "3650.00:00:00", "Cleanup:OrphanGrace")]
    [InlineData("Handoff:Ttl", "00:00:00", "Handoff:Ttl")]
    [InlineData("Handoff:Ttl", "30.00:00:00", "Handoff:Ttl")]
    [InlineData("Handoff:ClaimWait", "-00:00:01", "Handoff:ClaimWait")]
    [InlineData("Handoff:ClaimWait", "01:00:00", "Handoff:ClaimWait")]
    [InlineData("Handoff:ClaimRetryInterval", "00:00:00", "Handoff:ClaimRetryInterval")]
    [InlineData("Handoff:ClaimRetryInterval", "00:10:00", "Handoff:ClaimRetryInterval")]
    [InlineData("Handoff:ClaimTimeout", "00:00:00", "Handoff:ClaimTimeout")]
    [InlineData("Handoff:ClaimTimeout", "01:00:00", "Handoff:ClaimTimeout")]
    [InlineData("Handoff:RotationGrace", "00:00:00", "Handoff:RotationGrace")]
    [InlineData("Handoff:RotationGrace", "365.00:00:00", "Handoff:RotationGrace")]
    [InlineData("Handoff:RotationTimeout", "00:00:00", "Handoff:RotationTimeout")]
    [InlineData("Handoff:RotationTimeout", "1.00:00:00", "Handoff:RotationTimeout")]
    [InlineData("Handoff:StorageTimeout", "00:00:00", "Handoff:StorageTimeout")]
    [InlineData("Handoff:StorageTimeout", "01:00:00", "Handoff:StorageTimeout")]
    [InlineData("Handoff:ClaimReplayWindow", "00:00:00", "Handoff:ClaimReplayWindow")]
    [InlineData("Handoff:ClaimReplayWindow", "1.00:00:00", "Handoff:ClaimReplayWindow")]
    public async Task BadSetting_StartUpFails_NamingTheKey(string key, string value, string named)
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
