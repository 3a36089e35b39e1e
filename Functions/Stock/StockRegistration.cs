using Microsoft.Extensions.DependencyInjection;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Stock;

public static class StockRegistration
{
    /// <summary>The warm stock: its store, DDL, service, and the replenisher as a hosted service and as a singleton to wake.</summary>
    public static IServiceCollection AddWarmStock(this IServiceCollection services)
    {
        services.AddSingleton<WarmStockStore>();
        services.AddSingleton<WarmStockDdl>();
        services.AddSingleton<WarmStockService>();
        services.AddSingleton<WarmStockReplenisher>();
        services.AddHostedService(sp => sp.GetRequiredService<WarmStockReplenisher>());
        return services;
    }
}
