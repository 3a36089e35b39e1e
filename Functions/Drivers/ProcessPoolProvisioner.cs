using System.Diagnostics;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Drivers;

/// <summary>
/// Pool servers as local PostgreSQL processes (initdb + postgres on a free loopback port, detached, data under
/// <see cref="ProcessDriverOptions.DataRoot"/>): laptops, CI and the embedded default, where no Docker engine runs.
/// </summary>
public sealed class ProcessPoolProvisioner(IOptions<ProvisioningOptions> options) : IPoolProvisioner
{
    private readonly Lazy<LocalPostgres> _local = new(() => new LocalPostgres(LocalPostgres.FindBinDir(options.Value.Process.BinDir)));
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>The file in a server's data folder naming the catalog that made it.</summary>
    public const string CatalogMarker = "tenantdb.catalog";

    public string Driver => DriverNames.Process;

    private LocalPostgres Postgres => _local.Value;

    private string DataRoot => Path.GetFullPath(options.Value.Process.DataRoot);

    public async Task<ServerEndpoint> CreateAsync(PoolServerSpec spec, CancellationToken ct)
    {
        var dataDir = DataDirOf(spec.Name);
        await _gate.WaitAsync(ct);
        try
        {
            if (!LocalPostgres.IsInitialized(dataDir))
            {
                // A half-made folder from an interrupted create is started over.
                if (Directory.Exists(dataDir))
                {
                    Directory.Delete(dataDir, recursive: true);
                }

                var settings = options.Value.ServerSettings.ToDictionary(kv => kv.Key, kv => $"'{kv.Value.Replace("'", "''")}'");
                await Postgres.InitAsync(dataDir, LocalPostgres.FreeLoopbackPort(), spec.AdminUser, spec.AdminPassword, settings, ct);
                if (spec.CatalogId is { } catalogId)
                {
                    await File.WriteAllTextAsync(Path.Combine(dataDir, CatalogMarker), catalogId.ToString("D"), ct);
                }
            }

            if (!await Postgres.IsRunningAsync(dataDir, ct))
            {
                await Postgres.StartAsync(dataDir, ct);
            }
        }
        finally
        {
            _gate.Release();
        }

        return new ServerEndpoint("127.0.0.1", LocalPostgres.ReadPort(dataDir), dataDir, dataDir);
    }

    public async Task<ServerState> InspectAsync(PoolServerRef server, CancellationToken ct)
    {
        var dataDir = server.ResourceId ?? DataDirOf(server.Name);
        if (!LocalPostgres.IsInitialized(dataDir))
        {
            return new ServerState(ServerPresence.Missing, null, null);
        }

        var port = LocalPostgres.ReadPort(dataDir);
        if (!await Postgres.IsRunningAsync(dataDir, ct))
        {
            return new ServerState(ServerPresence.Down, "127.0.0.1", port, "no postmaster running");
        }

        var probe = await PoolProbe.ProbeAsync("127.0.0.1", port, server.AdminUser, server.AdminPassword, options.Value.ProbeTimeout, ct);
        return new ServerState(probe.Ok ? ServerPresence.Running : ServerPresence.Starting, "127.0.0.1", port, probe.Error);
    }

    public async Task DeleteAsync(PoolServerRef server, CancellationToken ct)
    {
        var dataDir = server.ResourceId ?? DataDirOf(server.Name);
        EnsureOwned(dataDir);
        if (LocalPostgres.IsInitialized(dataDir) && await Postgres.IsRunningAsync(dataDir, ct))
        {
            await Postgres.StopAsync(dataDir, ct, immediate: true); // its data is deleted next
        }

        if (Directory.Exists(dataDir))
        {
            Directory.Delete(dataDir, recursive: true);
        }

        File.Delete(LocalPostgres.PasswordFileOf(dataDir)); // left behind only when this process was killed during initdb
    }

    public async Task RestartAsync(PoolServerRef server, CancellationToken ct)
    {
        var dataDir = server.ResourceId ?? DataDirOf(server.Name);
        EnsureOwned(dataDir);
        if (await Postgres.IsRunningAsync(dataDir, ct))
        {
            await Postgres.StopAsync(dataDir, ct);
        }

        // After a crash the old backends may still be exiting and hold shared memory for a moment.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await Postgres.StartAsync(dataDir, ct);
                return;
            }
            catch (InvalidOperationException) when (attempt < 5)
            {
                await Task.Delay(TimeSpan.FromSeconds(attempt), ct);
            }
        }
    }

    public Task<IReadOnlyList<OwnedServer>> ListOwnedAsync(CancellationToken ct)
    {
        IReadOnlyList<OwnedServer> owned = Directory.Exists(DataRoot)
            ? Directory.GetDirectories(DataRoot)
                .Where(LocalPostgres.IsInitialized)
                .Select(d => new OwnedServer(Path.GetFileName(d), d, CatalogOf(d)))
                .ToList()
            : [];
        return Task.FromResult(owned);
    }

    public async Task StopAsync(PoolServerRef server, CancellationToken ct)
    {
        var dataDir = server.ResourceId ?? DataDirOf(server.Name);
        EnsureOwned(dataDir);
        if (LocalPostgres.IsInitialized(dataDir) && await Postgres.IsRunningAsync(dataDir, ct))
        {
            await Postgres.StopAsync(dataDir, ct);
        }
    }

    /// <summary>The id of the catalog that made the server, from the marker in its data folder (none for older servers).</summary>
    private static Guid? CatalogOf(string dataDir)
    {
        var marker = Path.Combine(dataDir, CatalogMarker);
        return File.Exists(marker) && Guid.TryParse(File.ReadAllText(marker).Trim(), out var id) ? id : null;
    }

    /// <summary>Kills the postmaster outright (a crash, not a shutdown). For failure drills and tests.</summary>
    public static void Kill(string dataDir)
    {
        if (LocalPostgres.PostmasterPid(dataDir) is { } pid)
        {
            try
            {
                Process.GetProcessById(pid).Kill();
            }
            catch (ArgumentException)
            {
                // Already gone.
            }
        }
    }

    private string DataDirOf(string name) =>
        Identifier.IsSafe(name.Replace('-', '_')) ? Path.Combine(DataRoot, name) : throw new ArgumentException("Not a valid pool name.", nameof(name));

    // Never delete or restart a folder outside this driver's data root.
    private void EnsureOwned(string dataDir)
    {
        if (!Path.GetFullPath(dataDir).StartsWith(DataRoot + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw new InvalidOperationException("The server's data folder is not under the process driver's data root.");
        }
    }
}
