using Microsoft.Extensions.Options;

namespace TenantDb.Functions.Drivers;

/// <summary>The drivers by name: a pool is always managed by the driver that made it, new pools by the configured one.</summary>
public sealed class PoolProvisioners(IEnumerable<IPoolProvisioner> drivers, IOptions<ProvisioningOptions> options)
{
    // The last registration of a name wins, as with any DI override.
    private readonly Dictionary<string, IPoolProvisioner> _drivers = drivers.GroupBy(d => d.Driver, StringComparer.Ordinal)
        .ToDictionary(g => g.Key, g => g.Last(), StringComparer.Ordinal);

    public IPoolProvisioner Default => For(options.Value.Driver);

    public IPoolProvisioner For(string driver) =>
        _drivers.TryGetValue(driver, out var provisioner)
            ? provisioner
            : throw new InvalidOperationException($"No pool driver named '{driver}'.");

    public IEnumerable<IPoolProvisioner> All => _drivers.Values;
}
