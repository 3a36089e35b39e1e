using Microsoft.Extensions.DependencyInjection;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Settings;

namespace TenantDb.Functions.Administration;

public static class AdministrationRegistration
{
    /// <summary>Pool administration, the health sweep, the daily cleanup and the app's health check, with the <c>Sweep</c> options validated at start-up.</summary>
    public static IServiceCollection AddPoolAdministration(this IServiceCollection services)
    {
        services.AddValidatedOptions<SweepOptions>(SweepOptions.Section);
        services.AddValidatedOptions<CleanupOptions>(CleanupOptions.Section);
        services.AddValidatedOptions<HealthzOptions>(HealthzOptions.Section);
        services.AddSingleton<HealthService>();
        services.AddSingleton<AppHealth>();
        services.AddSingleton<CatalogServer>();
        services.AddSingleton<RegisteredServerAudit>();
        services.AddSingleton<PoolReadService>();
        services.AddSingleton<LoadQueries>();
        services.AddSingleton<LoadService>();
        services.AddSingleton<PoolLifecycleService>();
        services.AddSingleton<EvacuationService>();
        services.AddSingleton<PoolRegistrationService>();
        services.AddSingleton<AdoptionStore>();
        services.AddSingleton<AdoptionDdl>();
        services.AddSingleton<TenantAdoptionService>();
        services.AddSingleton<CleanupService>();
        services.AddSingleton<KeyRotationService>();
        services.AddSingleton<ActivityQueries>();
        services.AddSingleton<ActivityService>();
        services.AddSingleton<AuditTrailService>();
        services.AddSingleton<ReleaseStore>();
        services.AddSingleton<UnreleaseService>();
        return services;
    }
}
