using System.Diagnostics;
using Npgsql;
using TenantDb.Functions.Drivers;
using TenantDb.Functions.Secrets;

namespace TenantDb.Bench;

/// <summary>One PostgreSQL server the benchmark started: its port, superuser password and data directory.</summary>
public sealed record BenchServer(string Name, int Port, string Password, string DataDir)
{
    public string ConnectionString(string database = "postgres", int maxPoolSize = 100) => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1", Port = Port, Username = "postgres", Password = Password, Database = database, MaxPoolSize = maxPoolSize,
    }.ConnectionString;
}

/// <summary>
/// The servers of one run, all under one temporary root: the catalog server (one database per section's catalog), the pool
/// server every allocate section uses, and servers a section starts itself. Disposing stops every one and deletes the root.
/// </summary>
public sealed class Servers : IAsyncDisposable
{
    private readonly List<BenchServer> _started = [];

    private Servers(string root) => Root = root;

    public string Root { get; }
    public LocalPostgres Postgres { get; } = new(LocalPostgres.FindBinDir(null));
    public BenchServer Catalog { get; private set; } = null!;
    public BenchServer Pool { get; private set; } = null!;

    public static async Task<Servers> StartAsync()
    {
        var servers = new Servers(Path.Combine(Path.GetTempPath(), "tenantdb-bench", Guid.NewGuid().ToString("N")[..8]));
        try
        {
            await servers.MakeDirectoryAsync(servers.Root);
            // Every section keeps its own connection pools open on these two (four catalogs, four allocators, the raw floor).
            var many = new Dictionary<string, string> { ["max_connections"] = "400" };
            servers.Catalog = await servers.StartServerAsync("catalog", many);
            servers.Pool = await servers.StartServerAsync("pool", many);
        }
        catch
        {
            await servers.DisposeAsync();
            throw;
        }

        return servers;
    }

    /// <summary>A directory the postgres OS user may write to (the benchmark may run as root, the servers never do).</summary>
    public async Task MakeDirectoryAsync(string path)
    {
        Directory.CreateDirectory(path);
        if (Environment.IsPrivilegedProcess)
        {
            using var chown = Process.Start("chown", ["postgres:postgres", path])!;
            await chown.WaitForExitAsync();
        }
    }

    /// <summary>initdb + start, the raw way the process driver makes a server.</summary>
    public async Task<BenchServer> StartServerAsync(string name, IReadOnlyDictionary<string, string>? settings = null)
    {
        var server = new BenchServer(name, LocalPostgres.FreeLoopbackPort(), PasswordGenerator.Generate(32), Path.Combine(Root, name));
        await Postgres.InitAsync(server.DataDir, server.Port, "postgres", server.Password, settings, CancellationToken.None);
        _started.Add(server);
        await Postgres.StartAsync(server.DataDir, CancellationToken.None);
        return server;
    }

    public async Task StopServerAsync(BenchServer server)
    {
        _started.Remove(server);
        await StopQuietlyAsync(server.DataDir);
        Directory.Delete(server.DataDir, recursive: true);
    }

    /// <summary>Creates a database on the catalog server (a catalog of its own for one section).</summary>
    public async Task<string> CreateCatalogDatabaseAsync(string name)
    {
        await using var conn = new NpgsqlConnection(Catalog.ConnectionString());
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", conn);
        await cmd.ExecuteNonQueryAsync();
        return Catalog.ConnectionString(name);
    }

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        foreach (var server in _started.AsEnumerable().Reverse())
        {
            await StopQuietlyAsync(server.DataDir);
        }

        // Servers a LocalHost made with the process driver live under the root too.
        foreach (var pidFile in Directory.Exists(Root) ? Directory.EnumerateFiles(Root, "postmaster.pid", SearchOption.AllDirectories).ToList() : [])
        {
            await StopQuietlyAsync(Path.GetDirectoryName(pidFile)!);
        }

        if (Directory.Exists(Root))
        {
            Directory.Delete(Root, recursive: true);
        }
    }

    private async Task StopQuietlyAsync(string dataDir)
    {
        try
        {
            if (await Postgres.IsRunningAsync(dataDir, CancellationToken.None))
            {
                await Postgres.StopAsync(dataDir, CancellationToken.None, immediate: true);
            }
        }
        catch (InvalidOperationException)
        {
            // Stopped meanwhile, or pg_ctl failed: nothing more to do for a benchmark.
        }
    }
}
