using Microsoft.Extensions.DependencyInjection;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Settings;

namespace TenantDb.Functions.Usage;

public static class UsageRegistration
{
    /// <summary>Usage collection and quotas: their options, probe, stores, enforcer, collector and the usage route's service.</summary>
    public static IServiceCollection AddUsage(this IServiceCollection services)
    {
        services.AddValidatedOptions<UsageOptions>(UsageOptions.Section)
            .Validate(o => o.HistoryRetention > TimeSpan.Zero, "Usage:HistoryRetention must be positive.");
        services.AddSingleton<UsageStore>();
        services.AddSingleton<UsageProbe>();
        services.AddSingleton<QuotaStore>();
        services.AddSingleton<QuotaDdl>();
        services.AddSingleton<QuotaEnforcer>();
        services.AddSingleton<TenantUsageService>();
        services.AddSingleton<UsageCollector>();
        return services;
    }
}
