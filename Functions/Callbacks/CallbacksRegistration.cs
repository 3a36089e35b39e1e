using Microsoft.Extensions.DependencyInjection;
using TenantDb.Functions.Settings;

namespace TenantDb.Functions.Callbacks;

public static class CallbacksRegistration
{
    /// <summary>Tenant callbacks (issue 14 item 6) with the <c>Callbacks</c> options validated at start-up.</summary>
    public static IServiceCollection AddTenantCallbacks(this IServiceCollection services)
    {
        services.AddValidatedOptions<CallbackOptions>(CallbackOptions.Section);
        services.AddSingleton<TenantCallbacks>();
        return services;
    }
}
