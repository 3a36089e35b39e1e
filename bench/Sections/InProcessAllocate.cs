using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using TenantDb.Functions;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Secrets;

namespace TenantDb.Bench.Sections;

/// <summary>
/// Allocate in process: <see cref="AllocationService"/> through the app's own service graph (<c>AddTenantDbServices</c>),
/// its own catalog database, the run's pool server registered as its only pool. The create path has no warm stock
/// (<c>Pools:WarmStock</c> 0); the warm-stock path fills the stock before each round (untimed), so every allocation claims.
/// </summary>
public sealed class InProcessAllocate : ILoadSection, IAsyncDisposable
{
    private readonly ServiceProvider _services;
    private readonly AllocationService _allocation;
    private readonly bool _warm;

    private InProcessAllocate(ServiceProvider services, bool warm)
    {
        _services = services;
        _allocation = services.GetRequiredService<AllocationService>();
        _warm = warm;
    }

    public string Key => _warm ? "allocate_in_process_warm_stock" : "allocate_in_process_create";
    public string Title => _warm ? "allocate in process, warm stock" : "allocate in process, create path";

    /// <param name="stock">The warm stock per pool (0: the create path).</param>
    public static async Task<InProcessAllocate> StartAsync(Servers servers, bool warm, int stock)
    {
        var name = warm ? "inproc_warm" : "inproc_create";
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["ConnectionStrings:Catalog"] = await servers.CreateCatalogDatabaseAsync(name),
            ["Secrets:Key"] = SecretProtector.GenerateKey(),
            ["Allocation:DatabasePrefix"] = warm ? "biw_" : "bic_",
            ["Pools:WarmStock"] = (warm ? stock : 0).ToString(System.Globalization.CultureInfo.InvariantCulture),
        }).Build();
        var services = new ServiceCollection().AddSingleton<IConfiguration>(config).AddLogging(b => b.SetMinimumLevel(LogLevel.Warning))
            .AddTenantDbServices(config).BuildServiceProvider();
        services.GetRequiredService<CatalogMigrator>().Migrate();
        var protector = services.GetRequiredService<SecretProtector>();
        var poolName = name.Replace('_', '-');
        await services.GetRequiredService<PoolStore>().InsertAsync(new NewPool
        {
            Name = poolName, Host = "127.0.0.1", Port = servers.Pool.Port, ServerType = ServerType.Shared, Status = PoolStatus.Active,
            MaxInstances = 10_000, Driver = "registered", AdminUser = "postgres",
            AdminPasswordEncrypted = protector.Protect(servers.Pool.Password, PoolAdminPasswords.Purpose(poolName)),
        }, "bench", CancellationToken.None);
        var section = new InProcessAllocate(services, warm);
        // Warm the catalog and pool connection pools (the first allocation opens them).
        await section.AllocateAsync();
        return section;
    }

    public async Task PrepareAsync(Load load)
    {
        if (_warm)
        {
            await WarmStock.ReplenishAsync(_services);
        }
    }

    public Task<Samples> RunAsync(Load load) => Latency.SampleAsync(load, _ => AllocateAsync());

    public async ValueTask DisposeAsync() => await _services.DisposeAsync();

    private async Task<bool> AllocateAsync() =>
        await _allocation.AllocateAsync(new AllocationRequest(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "standard"), CancellationToken.None)
            is AllocationOutcome.Allocated;
}
