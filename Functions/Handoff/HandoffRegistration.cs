using Microsoft.Extensions.DependencyInjection;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Settings;

namespace TenantDb.Functions.Handoff;

public static class HandoffRegistration
{
    /// <summary>The credential handoff: its options, <see cref="HandoffService"/>, and that service as the allocation's deposit.</summary>
    public static IServiceCollection AddHandoff(this IServiceCollection services)
    {
        services.AddValidatedOptions<HandoffOptions>(HandoffOptions.Section);
        services.AddSingleton<LoginRotationStore>();
        services.AddSingleton<PasswordRotation>();
        services.AddSingleton<HandoffTaskHub>();
        services.AddSingleton<HandoffService>();
        services.AddSingleton<ICredentialDeposit>(sp => sp.GetRequiredService<HandoffService>());
        return services;
    }
}
