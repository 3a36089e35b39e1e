using Microsoft.Extensions.DependencyInjection;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Settings;

namespace TenantDb.Functions.Usage;

public static class UsageRegistration
{
    /// <summary>Usage collection: its options, probe, store and collector.</summary>
    public static IServiceCollection AddUsage(this IServiceCollection services)
    {
        services.AddValidatedOptions<UsageOptions>(UsageOptions.Section)
            .Validate(o => o.HistoryRetention > TimeSpan.Zero, "Usage:HistoryRetention must be positive.");
        services.AddSingleton<UsageStore>();
        services.AddSingleton<UsageProbe>();
        services.AddSingleton<UsageCollector>();
        return services;
    }
}
