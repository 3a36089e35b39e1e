using Microsoft.Extensions.DependencyInjection;
using TenantDb.Functions.Stock;

namespace TenantDb.Bench;

/// <summary>The warm stock (issue 13 item 1, DESIGN §9) as the benchmark drives it in process.</summary>
public static class WarmStock
{
    /// <summary>The most stock per pool the app accepts (<c>Pools:WarmStock</c> is at most 100).</summary>
    public const int MaxPerPool = 100;

    /// <summary>Fills every in-service active shared pool's stock up to its target now (untimed); how many it made.</summary>
    public static Task<int> ReplenishAsync(IServiceProvider services) =>
        services.GetRequiredService<WarmStockService>().ReplenishAsync(CancellationToken.None);
}
