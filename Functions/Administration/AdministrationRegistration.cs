using Microsoft.Extensions.DependencyInjection;
using TenantDb.Functions.Catalog;

namespace TenantDb.Functions.Administration;

public static class AdministrationRegistration
{
    /// <summary>Pool administration, the health sweep and the daily cleanup, with the <c>Sweep</c> options validated at start-up.</summary>
    public static IServiceCollection AddPoolAdministration(this IServiceCollection services)
    {
        services.AddOptions<SweepOptions>().BindConfiguration(SweepOptions.Section).ValidateDataAnnotations()
            .Validate(o => o.HasValidDurations(),
                "Sweep:ProbeTimeout (at most 2 minutes), Sweep:ProvisioningStuckAfter and Sweep:HistoryRetention must be positive; Sweep:ErrorPoolRetention not negative.")
            .ValidateOnStart();
        services.AddOptions<CleanupOptions>().BindConfiguration(CleanupOptions.Section)
            .Validate(o => o.OrphanGrace >= TimeSpan.Zero, "Cleanup:OrphanGrace must not be negative.")
            .ValidateOnStart();
        services.AddSingleton<HealthService>();
        services.AddSingleton<CatalogServer>();
        services.AddSingleton<RegisteredServerAudit>();
        services.AddSingleton<PoolReadService>();
        services.AddSingleton<PoolLifecycleService>();
        services.AddSingleton<PoolRegistrationService>();
        services.AddSingleton<CleanupService>();
        services.AddSingleton<KeyRotationService>();
        return services;
    }
}
