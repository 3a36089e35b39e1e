using Microsoft.Extensions.DependencyInjection;
using TenantDb.Functions.Catalog;

namespace TenantDb.Functions.Moves;

public static class MovesRegistration
{
    /// <summary>Moves of tenants between pools: the catalog table, the pool side, the run, the request check, the copies' purge, the sweep's recovery of abandoned moves.</summary>
    public static IServiceCollection AddMoves(this IServiceCollection services)
    {
        services.AddSingleton<MoveStore>();
        services.AddSingleton<MoveDdl>();
        services.AddSingleton<MoveService>();
        services.AddSingleton<MoveRequests>();
        services.AddSingleton<MovedCopyPurge>();
        services.AddSingleton<StuckMoveRecovery>();
        services.AddSingleton<TierMoves>();
        return services;
    }
}
