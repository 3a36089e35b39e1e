using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace TenantDb.Functions.Settings;

public static class OptionsRegistration
{
    /// <summary>
    /// Binds <typeparamref name="TOptions"/> to its configuration section and validates it, nested objects and dictionaries
    /// included (<see cref="OptionsGraphValidator{TOptions}"/>), when the app starts: a bad setting stops the start with a
    /// message that names its key, never a request later. Further rules chain on the returned builder.
    /// </summary>
    public static OptionsBuilder<TOptions> AddValidatedOptions<TOptions>(this IServiceCollection services, string section) where TOptions : class
    {
        services.AddSingleton<IValidateOptions<TOptions>>(new OptionsGraphValidator<TOptions>(section));
        return services.AddOptions<TOptions>().BindConfiguration(section).ValidateOnStart();
    }
}
