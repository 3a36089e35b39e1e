using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using TenantDb.Functions;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Secrets;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Drivers;

// The benchmark harness: every number is a ratio against the raw floor measured in the same run on the same machine.
//   allocate (catalog transaction + DDL + ready)  vs  raw CREATE ROLE + CREATE DATABASE on the same pool server
//   provisioning (process driver create + ready)   vs  raw initdb + pg_ctl start
// Usage: dotnet run --project bench -c Release -- [iterations=40] [parallel=8]
var iterations = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 40;
var parallel = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 8;
var root = Path.Combine(Path.GetTempPath(), "tenantdb-bench", Guid.NewGuid().ToString("N")[..8]);
var local = new LocalPostgres(LocalPostgres.FindBinDir(null));
var results = new Dictionary<string, object>();

async Task<(int Port, string Password, string Dir)> StartServerAsync(string name)
{
    var dir = Path.Combine(root, name);
    var password = PasswordGenerator.Generate(32);
    var port = LocalPostgres.FreeLoopbackPort();
    await local.InitAsync(dir, port, "postgres", password, null, CancellationToken.None);
    await local.StartAsync(dir, CancellationToken.None);
    return (port, password, dir);
}

static string Cs(int port, string password, string db = "postgres", int max = 40) =>
    new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = port, Username = "postgres", Password = password, Database = db, MaxPoolSize = max }.ConnectionString;

static (double Median, double P95, double Mean) Stats(List<double> ms)
{
    ms.Sort();
    return (ms[ms.Count / 2], ms[(int)Math.Min(ms.Count - 1, Math.Ceiling(ms.Count * 0.95) - 1)], ms.Average());
}

Directory.CreateDirectory(root);
if (Environment.IsPrivilegedProcess)
{
    using var chown = Process.Start("chown", ["postgres:postgres", root])!;
    await chown.WaitForExitAsync();
}

var catalog = await StartServerAsync("catalog");
var pool = await StartServerAsync("pool");
try
{
    // The allocator's fast path through its real service graph.
    var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
    {
        ["ConnectionStrings:Catalog"] = Cs(catalog.Port, catalog.Password, "tenantdb_bench"),
        ["Secrets:Key"] = SecretProtector.GenerateKey(),
    }).Build();
    await using var services = new ServiceCollection().AddSingleton<IConfiguration>(config).AddLogging(b => b.SetMinimumLevel(LogLevel.Warning)).AddTenantDbServices(config).BuildServiceProvider();
    services.GetRequiredService<CatalogMigrator>().Migrate();
    var protector = services.GetRequiredService<SecretProtector>();
    await services.GetRequiredService<PoolStore>().InsertAsync(new NewPool
    {
        Name = "bench-pool", Host = "127.0.0.1", Port = pool.Port, ServerType = ServerType.Shared, Status = PoolStatus.Active,
        MaxInstances = 10_000, Driver = "registered", AdminUser = "postgres",
        AdminPasswordEncrypted = protector.Protect(pool.Password, PoolAdminPasswords.Purpose("bench-pool")),
    }, "bench", CancellationToken.None);
    var allocation = services.GetRequiredService<AllocationService>();
    AllocationRequest NewRequest() => new(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "standard");
    await allocation.AllocateAsync(NewRequest(), CancellationToken.None); // warm the connection pools

    // Raw floor and allocator interleaved, one each per round, so both meet the same server state (checkpoints, caches).
    var raw = new List<double>();
    var allocate = new List<double>();
    await using var rawConn = new NpgsqlConnection(Cs(pool.Port, pool.Password));
    await rawConn.OpenAsync();
    for (var i = 0; i < iterations; i++)
    {
        var name = $"raw_{i}_{Guid.NewGuid():N}"[..30];
        var rawWatch = Stopwatch.StartNew();
        await using (var role = new NpgsqlCommand($"CREATE ROLE \"{name}\" LOGIN PASSWORD '{ScramVerifier.Compute(PasswordGenerator.Generate(40))}'", rawConn))
        {
            await role.ExecuteNonQueryAsync();
        }

        await using (var db = new NpgsqlCommand($"CREATE DATABASE \"{name}\" OWNER \"{name}\" TEMPLATE template0", rawConn))
        {
            await db.ExecuteNonQueryAsync();
        }

        raw.Add(rawWatch.Elapsed.TotalMilliseconds);

        var watch = Stopwatch.StartNew();
        var outcome = await allocation.AllocateAsync(NewRequest(), CancellationToken.None);
        allocate.Add(watch.Elapsed.TotalMilliseconds);
        if (outcome is not AllocationOutcome.Allocated)
        {
            throw new InvalidOperationException($"allocation failed: {outcome}");
        }
    }

    var idempotent = new List<double>();
    var repeat = NewRequest();
    await allocation.AllocateAsync(repeat, CancellationToken.None);
    for (var i = 0; i < iterations; i++)
    {
        var watch = Stopwatch.StartNew();
        await allocation.AllocateAsync(repeat, CancellationToken.None);
        idempotent.Add(watch.Elapsed.TotalMilliseconds);
    }

    // Throughput under concurrency: raw vs allocator, same parallelism, same server.
    async Task<double> Throughput(Func<int, Task> work)
    {
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, parallel).Select(w => Task.Run(async () =>
        {
            for (var i = w; i < iterations; i += parallel)
            {
                await work(i);
            }
        })));
        return iterations / watch.Elapsed.TotalSeconds;
    }

    await using var rawSource = NpgsqlDataSource.Create(Cs(pool.Port, pool.Password));
    var rawRate = await Throughput(async i =>
    {
        var name = $"par_{i}_{Guid.NewGuid():N}"[..30];
        await using var conn = await rawSource.OpenConnectionAsync();
        await using (var role = new NpgsqlCommand($"CREATE ROLE \"{name}\" LOGIN", conn))
        {
            await role.ExecuteNonQueryAsync();
        }

        await using var db = new NpgsqlCommand($"CREATE DATABASE \"{name}\" OWNER \"{name}\" TEMPLATE template0", conn);
        await db.ExecuteNonQueryAsync();
    });
    var allocRate = await Throughput(async _ => await allocation.AllocateAsync(NewRequest(), CancellationToken.None));

    // Provisioning: the process driver's create + ready against a raw initdb + start.
    var rawStart = new List<double>();
    var driverStart = new List<double>();
    var driver = new ProcessPoolProvisioner(Microsoft.Extensions.Options.Options.Create(new ProvisioningOptions
    {
        Process = new ProcessDriverOptions { DataRoot = Path.Combine(root, "driver-pools") },
    }));
    Directory.CreateDirectory(Path.Combine(root, "driver-pools"));
    if (Environment.IsPrivilegedProcess)
    {
        using var chown = Process.Start("chown", ["postgres:postgres", Path.Combine(root, "driver-pools")])!;
        await chown.WaitForExitAsync();
    }

    for (var i = 0; i < 3; i++)
    {
        var watch = Stopwatch.StartNew();
        var server = await StartServerAsync($"raw-start-{i}");
        rawStart.Add(watch.Elapsed.TotalMilliseconds);
        await local.StopAsync(server.Dir, CancellationToken.None);

        var spec = new PoolServerSpec($"bench-{i}", "shared", "tenantdb_admin", PasswordGenerator.Generate(40), null, null);
        watch.Restart();
        var endpoint = await driver.CreateAsync(spec, CancellationToken.None);
        var reference = new PoolServerRef(spec.Name, endpoint.ResourceId, endpoint.Host, endpoint.Port, spec.AdminUser, spec.AdminPassword);
        while ((await driver.InspectAsync(reference, CancellationToken.None)).Presence != ServerPresence.Running)
        {
            await Task.Delay(50);
        }

        driverStart.Add(watch.Elapsed.TotalMilliseconds);
        await driver.DeleteAsync(reference, CancellationToken.None);
    }

    var (rawMed, rawP95, _) = Stats(raw);
    var (allocMed, allocP95, _) = Stats(allocate);
    var (idemMed, idemP95, _) = Stats(idempotent);
    var (startMed, _, _) = Stats(rawStart);
    var (driverMed, _, _) = Stats(driverStart);
    results["iterations"] = iterations;
    results["parallel"] = parallel;
    results["raw_create_role_database_ms"] = new { median = rawMed, p95 = rawP95 };
    results["allocate_ms"] = new { median = allocMed, p95 = allocP95 };
    results["allocate_vs_raw_median_ratio"] = allocMed / rawMed;
    results["idempotent_repeat_ms"] = new { median = idemMed, p95 = idemP95 };
    results["throughput_per_s"] = new { raw = rawRate, allocate = allocRate, ratio = allocRate / rawRate };
    results["server_start_ms"] = new { raw_initdb_start = startMed, process_driver_create_ready = driverMed, ratio = driverMed / startMed };

    Console.WriteLine($"allocate vs raw CREATE ROLE + CREATE DATABASE: median {allocMed:F1} ms vs {rawMed:F1} ms = x{allocMed / rawMed:F2} (p95 {allocP95:F1} vs {rawP95:F1})");
    Console.WriteLine($"repeat allocate (idempotent answer): median {idemMed:F1} ms");
    Console.WriteLine($"throughput with {parallel} in parallel: allocate {allocRate:F1}/s vs raw {rawRate:F1}/s = x{allocRate / rawRate:F2}");
    Console.WriteLine($"provisioning vs raw server start: {driverMed:F0} ms vs {startMed:F0} ms = x{driverMed / startMed:F2}");
    var output = Path.Combine(AppContext.BaseDirectory, "bench-results.json");
    await File.WriteAllTextAsync(output, JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true }));
    Console.WriteLine($"results: {output}");
}
finally
{
    NpgsqlConnection.ClearAllPools();
    await local.StopAsync(pool.Dir, CancellationToken.None);
    await local.StopAsync(catalog.Dir, CancellationToken.None);
    Directory.Delete(root, recursive: true);
}
