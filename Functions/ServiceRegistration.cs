using Microsoft.Azure.Functions.Worker.Middleware;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Npgsql;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Api;
using TenantDb.Functions.Backups;
using TenantDb.Functions.Callbacks;
using TenantDb.Functions.Moves;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Handoff;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Provisioning;
using TenantDb.Functions.Secrets;
using TenantDb.Functions.Administration;
using TenantDb.Functions.Drivers;
using TenantDb.Functions.Settings;
using TenantDb.Functions.Stock;
using TenantDb.Functions.Telemetry;
using TenantDb.Functions.Usage;

namespace TenantDb.Functions;

/// <summary>The composition root's one extension: options, the catalog data source and every service.</summary>
public static class ServiceRegistration
{
    public static IServiceCollection AddTenantDbServices(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddValidatedOptions<AllocationOptions>(AllocationOptions.Section)
            .Validate(o => o.WaitPollInterval < o.WaitForCapacityTimeout, "Allocation:WaitPollInterval must be shorter than Allocation:WaitForCapacityTimeout.");
        services.AddValidatedOptions<PoolsOptions>(PoolsOptions.Section)
            .Validate(o => o.Tiers.Count > 0 && o.Tiers.Keys.All(k => Identifier.IsSafe(k) && k.Length <= 32),
                "Pools:Tiers needs at least one tier; tier names are lower-case letters, digits and underscores.");
        services.AddValidatedOptions<ProvisioningOptions>(ProvisioningOptions.Section)
            .Validate(o => o.ReadyPollInterval < o.ReadyTimeout, "Provisioning:ReadyPollInterval must be shorter than Provisioning:ReadyTimeout.");
        services.AddValidatedOptions<SecretsOptions>(SecretsOptions.Section);
        services.AddSingleton<IValidateOptions<SecretsOptions>, SecretsOptionsValidator>();
        services.AddApiOptions(configuration);

        var catalogConnection = configuration.GetConnectionString(CatalogOptions.ConnectionStringName)
            ?? throw new InvalidOperationException("ConnectionStrings:Catalog is not set.");
        services.AddSingleton(new CatalogOptions { ConnectionString = catalogConnection });
        services.AddSingleton(_ => new NpgsqlDataSourceBuilder(catalogConnection) { Name = "catalog" }.Build());

        services.AddSingleton(TimeProvider.System);
        services.AddAllocatorTelemetry(configuration);
        services.AddSingleton<SecretProtector>();
        services.AddSingleton<PoolAdminPasswords>();
        services.AddSingleton<PoolConnections>();
        services.AddSingleton<ITenantDdl, TenantDdl>();
        services.AddSingleton<PoolStore>();
        services.AddSingleton<PoolHealthStore>();
        services.AddSingleton<PoolQueries>();
        services.AddSingleton<AuditTrailStore>();
        services.AddSingleton<AdminPasswordStore>();
        services.AddSingleton<TenantStore>();
        services.AddSingleton<FirstPasswordStore>();
        services.AddSingleton<CatalogIdentity>();
        services.AddSingleton<OrphanStore>();
        services.AddWarmStock();
        services.AddSingleton(sp => new TenantNaming(sp.GetRequiredService<IOptions<AllocationOptions>>().Value.DatabasePrefix));
        services.AddUsage();
        services.AddSingleton<AllocationCompensation>();
        services.AddSingleton<AllocationService>();
        services.AddSingleton<TenantPurge>();
        services.AddSingleton<AbandonedAllocationRecovery>();
        services.AddSingleton<FailedAllocationCleanup>();
        services.AddSingleton<TenantLimits>();
        services.AddSingleton<TierChangeStore>();
        services.AddSingleton<TierChangeService>();
        services.AddSingleton<CatalogMigrator>();

        services.AddSingleton<DockerEngine>();
        services.AddSingleton<IPoolProvisioner, ProcessPoolProvisioner>();
        services.AddSingleton<IPoolProvisioner, DockerPoolProvisioner>();
        services.AddSingleton<IPoolProvisioner, SwarmPoolProvisioner>();
        services.AddSingleton<IPoolProvisioner, RegisteredPoolProvisioner>();
        services.AddSingleton<PoolProvisioners>();
        services.AddSingleton<ProvisioningStore>();
        services.AddSingleton<ServerHardening>();
        services.AddSingleton<PoolDeprovisioner>();
        services.AddSingleton<ProvisioningService>();
        services.AddSingleton<AllocationFlow>();
        services.AddHandoff();
        services.AddTenantCallbacks();
        services.AddValidatedOptions<CallbackUrlOptions>(CallbackUrlOptions.Section);
        services.AddBackups();
        services.AddMoves();
        services.AddPoolAdministration();
        services.AddHostedService<CatalogMigrationService>();
        // Program.cs puts it into the worker's pipeline; a host without Program.cs (LocalHost) finds it here.
        services.AddSingleton<IFunctionsWorkerMiddleware, ExceptionMiddleware>();
        services.AddSingleton<IFunctionsWorkerMiddleware, ActorMiddleware>();
        return services;
    }
}

/// <summary>Applies catalog migrations before the app takes work.</summary>
internal sealed class CatalogMigrationService(CatalogMigrator migrator) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => Task.Run(migrator.Migrate, cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
