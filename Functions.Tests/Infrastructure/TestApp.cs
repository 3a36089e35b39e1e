using System.Collections.Concurrent;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Secrets;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Tests.Infrastructure;

/// <summary>
/// The app's real service graph (the same <c>AddTenantDbServices</c> as Program.cs) on a fresh catalog database of
/// its own, with every log line captured.
/// </summary>
public sealed class TestApp : IAsyncDisposable
{
    private TestApp(ServiceProvider services, PostgresFixture fixture, string catalogDb)
    {
        Services = services;
        Fixture = fixture;
        CatalogDatabase = catalogDb;
    }

    public ServiceProvider Services { get; }
    public PostgresFixture Fixture { get; }
    public string CatalogDatabase { get; }
    public T Get<T>() where T : notnull => Services.GetRequiredService<T>();
    public AllocationService Allocation => Get<AllocationService>();
    public TenantPurge Purge => Get<TenantPurge>();
    public AbandonedAllocationRecovery Recovery => Get<AbandonedAllocationRecovery>();
    public FailedAllocationCleanup LeftoverCleanup => Get<FailedAllocationCleanup>();
    public NpgsqlDataSource Catalog => Get<NpgsqlDataSource>();

    public static async Task<TestApp> StartAsync(PostgresFixture fixture, IDictionary<string, string?>? settings = null,
        Action<IServiceCollection>? configure = null, int? catalogPort = null)
    {
        var catalogDb = $"catalog_{Guid.NewGuid():N}";
        var catalog = new NpgsqlConnectionStringBuilder(fixture.Catalog.ConnectionString(catalogDb)) { Pooling = true, MaxPoolSize = 40 };
        // A test may put a proxy between the app and its catalog (a lost reply, a cut connection).
        catalog.Port = catalogPort ?? catalog.Port;
        var config = new Dictionary<string, string?>
        {
            ["ConnectionStrings:Catalog"] = catalog.ConnectionString,
            ["Secrets:Key"] = SecretProtector.GenerateKey(),
            ["Allocation:DuplicateWait"] = "00:00:20",
            // These tests have no blob store unless they set one: a test of the final backup turns it on.
            ["Backups:FinalOnRelease"] = "false",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            config[key] = value;
        }

        var configuration = new ConfigurationBuilder().AddInMemoryCollection(config).Build();
        var collection = new ServiceCollection()
            .AddSingleton<IConfiguration>(configuration)
            .AddLogging(b => b.SetMinimumLevel(LogLevel.Trace).AddProvider(CapturedLogs.Provider))
            .AddTenantDbServices(configuration);
        configure?.Invoke(collection);
        var services = collection
            .BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true });
        services.GetRequiredService<CatalogMigrator>().Migrate();
        return new TestApp(services, fixture, catalogDb);
    }

    /// <summary>Records a started test server as an active shared pool (admin password encrypted, as the app stores it).</summary>
    public Task<Pool> AddPoolAsync(TestServer server, int maxInstances, string? name = null, ServerType type = ServerType.Shared,
        PoolStatus status = PoolStatus.Active, int priority = 100, Guid? dedicatedTo = null) =>
        AddPoolAsync(name ?? $"{server.Name}-{Guid.NewGuid().ToString("N")[..8]}", "127.0.0.1", server.Port, TestServer.Superuser, server.Password,
            "registered", maxInstances, type, status, priority, dedicatedTo);

    public async Task<Pool> AddPoolAsync(string name, string host, int port, string adminUser, string adminPassword, string driver,
        int maxInstances, ServerType type = ServerType.Shared, PoolStatus status = PoolStatus.Active, int priority = 100,
        Guid? dedicatedTo = null, string? resourceId = null)
    {
        var encrypted = Get<SecretProtector>().Protect(adminPassword, PoolAdminPasswords.Purpose(name));
        return await Get<PoolStore>().InsertAsync(new NewPool
        {
            Name = name,
            Host = host,
            Port = port,
            ServerType = type,
            Status = status,
            MaxInstances = maxInstances,
            Priority = priority,
            Driver = driver,
            DriverResourceId = resourceId,
            AdminUser = adminUser,
            AdminPasswordEncrypted = encrypted,
            DedicatedToInstanceId = dedicatedTo,
        }, "test", CancellationToken.None);
    }

    public async Task<T?> CatalogScalarAsync<T>(string sql, params (string Name, object Value)[] parameters)
    {
        await using var cmd = Catalog.CreateCommand(sql);
        foreach (var (n, v) in parameters)
        {
            cmd.Parameters.AddWithValue(n, v);
        }

        var value = await cmd.ExecuteScalarAsync();
        return value is null or DBNull ? default : (T)value;
    }

    /// <summary>
    /// Runs <paramref name="sql"/> with the catalog's triggers off (<c>session_replication_role = replica</c>, a superuser's
    /// power the app does not use): how a test ages the append-only audit trail.
    /// </summary>
    public async Task RewriteHistoryAsync(string sql, params (string Name, object Value)[] parameters)
    {
        await using var conn = await Catalog.OpenConnectionAsync();
        await using var tx = await conn.BeginTransactionAsync();
        await using (var off = new NpgsqlCommand("SET LOCAL session_replication_role = replica", conn, tx))
        {
            await off.ExecuteNonQueryAsync();
        }

        await using var cmd = new NpgsqlCommand(sql, conn, tx);
        foreach (var (n, v) in parameters)
        {
            cmd.Parameters.AddWithValue(n, v);
        }

        await cmd.ExecuteNonQueryAsync();
        await tx.CommitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await Services.DisposeAsync();
        NpgsqlConnection.ClearAllPools();
        await using var conn = new NpgsqlConnection(Fixture.Catalog.ConnectionString());
        await conn.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{CatalogDatabase}\" WITH (FORCE)", conn);
        await drop.ExecuteNonQueryAsync();
    }
}

/// <summary>Every log line the suite writes, so a test can prove no secret ever reached a log.</summary>
public static class CapturedLogs
{
    private static readonly ConcurrentQueue<string> Lines = new();
    public static ILoggerProvider Provider { get; } = new CapturingProvider();
    public static IReadOnlyCollection<string> All => Lines;

    public static void Write(string line) => Lines.Enqueue(line);

    private sealed class CapturingProvider : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new CapturingLogger(categoryName);
        public void Dispose() { }
    }

    private sealed class CapturingLogger(string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Write($"{logLevel} {category}: {formatter(state, exception)} {exception}");
    }
}
