using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TenantDb.Functions.Secrets;

namespace TenantDb.Functions.Tests.Infrastructure;

/// <summary>
/// The app's real service graph (the same <c>AddTenantDbServices</c> and settings as <see cref="TestApp"/>) with no database
/// behind it, for unit tests: the catalog connection string points at a closed loopback port, so a test that reaches the
/// catalog fails at once instead of quietly needing PostgreSQL. Nothing is migrated, started or created.
/// </summary>
public sealed class OfflineApp : IAsyncDisposable
{
    /// <summary>Nothing listens there; a connection attempt is refused at once.</summary>
    public const string NoCatalog = "Host=127.0.0.1;Port=1;Database=none;Username=none;Pooling=false;Timeout=2";

    private OfflineApp(ServiceProvider services) => Services = services;

    public ServiceProvider Services { get; }
    public T Get<T>() where T : notnull => Services.GetRequiredService<T>();

    public static OfflineApp Start(IDictionary<string, string?>? settings = null)
    {
        var config = new Dictionary<string, string?>
        {
            ["ConnectionStrings:Catalog"] = NoCatalog,
            ["Secrets:Key"] = SecretProtector.GenerateKey(),
            ["Allocation:DuplicateWait"] = "00:00:20",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            config[key] = value;
        }

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(config).Build();
        var services = new ServiceCollection()
            .AddSingleton<IConfiguration>(configuration)
            .AddLogging(b => b.SetMinimumLevel(LogLevel.Trace).AddProvider(CapturedLogs.Provider))
            .AddTenantDbServices(configuration)
            .BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true });
        return new OfflineApp(services);
    }

    public ValueTask DisposeAsync() => Services.DisposeAsync();
}
