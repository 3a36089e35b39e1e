using Microsoft.Extensions.DependencyInjection;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Settings;

namespace TenantDb.Functions.Backups;

public static class BackupsRegistration
{
    /// <summary>Backups and restores of tenant databases: options, the catalog table, the blob container, the client tools, the services.</summary>
    public static IServiceCollection AddBackups(this IServiceCollection services)
    {
        services.AddValidatedOptions<BackupsOptions>(BackupsOptions.Section);
        services.AddSingleton<BackupStore>();
        services.AddSingleton<BackupBlobs>();
        services.AddSingleton<PgClientTools>();
        services.AddSingleton<TenantRestoreDdl>();
        services.AddSingleton<BackupService>();
        services.AddSingleton<RestoreService>();
        services.AddSingleton<RestoreIntoService>();
        services.AddSingleton<FinalBackups>();
        services.AddSingleton<BackupSchedule>();
        services.AddSingleton<IFinalBackup>(sp => sp.GetRequiredService<FinalBackups>());
        return services;
    }
}
