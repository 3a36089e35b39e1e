using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using TenantDb.Functions;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Backups;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Drivers;
using TenantDb.Functions.Moves;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Secrets;

namespace TenantDb.Bench.Sections;

/// <summary>
/// A tenant's lifecycle on a database of about 100 MB (issue 14): two pool servers of its own, the app's service graph in
/// process (as <see cref="InProcessAllocate"/>) with its own catalog, both servers registered as pools. The tenant is allocated
/// on the first and filled by its own login (<c>INSERT … SELECT generate_series</c>) until <c>pg_database_size</c> reaches
/// the size; then, one after the other: the raw floor (<c>pg_dump -Fc | pg_restore</c> with the same binaries into an empty
/// database on the second server; again after the move, the other way, the faster being the floor; and once more with an
/// uncompressed archive, shown apart), <see cref="MoveService"/> to the second pool, <see cref="BackupService"/> to a blob
/// container of the run's own on the shared Azurite and <see cref="RestoreService"/> in place. Everything it makes (servers,
/// catalog database, container) is removed at the end, pass or fail.
/// </summary>
public static class Lifecycle
{
    private const string Key = "lifecycle";
    private const string StorageConnection = "UseDevelopmentStorage=true";
    private const long TargetBytes = 100L * 1024 * 1024;
    private const int RowsPerBatch = 100_000;
    private const string RawDatabase = "bench_raw_copy";
    private static readonly CancellationToken None = CancellationToken.None;

    public static async Task RunAsync(Servers servers, BenchOptions options, Report report)
    {
        var container = $"bench-lifecycle-{Guid.NewGuid():N}";
        var catalogName = "lifecycle_" + Guid.NewGuid().ToString("N")[..8];
        BenchServer? sourceServer = null;
        BenchServer? targetServer = null;
        ServiceProvider? services = null;
        var catalogMade = false;
        try
        {
            sourceServer = await servers.StartServerAsync("lifecycle-source");
            targetServer = await servers.StartServerAsync("lifecycle-target");
            var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["ConnectionStrings:Catalog"] = await servers.CreateCatalogDatabaseAsync(catalogName),
                ["Secrets:Key"] = SecretProtector.GenerateKey(),
                ["Allocation:DatabasePrefix"] = "blc_",
                ["Pools:WarmStock"] = "0",
                ["AzureWebJobsStorage"] = StorageConnection,
                ["Backups:Container"] = container,
            }).Build();
            catalogMade = true;
            services = new ServiceCollection().AddSingleton<IConfiguration>(config).AddLogging(b => b.SetMinimumLevel(LogLevel.Warning))
                .AddTenantDbServices(config).BuildServiceProvider();
            services.GetRequiredService<CatalogMigrator>().Migrate();

            // The tenant lands on the source: the target is registered after the allocation.
            await RegisterAsync(services, sourceServer, "lifecycle-source");
            var tenant = await services.GetRequiredService<AllocationService>().AllocateAsync(
                new AllocationRequest(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "standard"), None) as AllocationOutcome.Allocated
                ?? throw new InvalidOperationException("The lifecycle tenant was not allocated.");
            var target = await RegisterAsync(services, targetServer, "lifecycle-target");
            var instanceId = tenant.Tenant.InstanceId;
            var database = tenant.Tenant.DbName;

            var (rows, size) = await FillAsync(sourceServer, tenant);
            var sizeMb = size / 1048576.0;
            Console.Error.WriteLine($"bench: lifecycle tenant {database}: {rows} rows, pg_database_size {sizeMb:0.0} MB");

            // The raw floor: the same binaries, superuser on both sides, into an empty database on the target server.
            var loadBefore = LoadAverage();
            var (rawBefore, rawBytes) = await RawCopyAsync(servers, sourceServer, targetServer, database);
            Console.Error.WriteLine($"bench: lifecycle raw pg_dump | pg_restore, source to target: {rawBefore:0.00} s");

            var watch = Stopwatch.StartNew();
            var move = await services.GetRequiredService<MoveService>().RunAsync(new MoveRunInput(Guid.NewGuid(), instanceId, target.Id, "bench"), None);
            var moveSeconds = watch.Elapsed.TotalSeconds;
            if (move.Status != MoveResult.Moved)
            {
                throw new InvalidOperationException($"the move failed: {move.ErrorType}: {move.Error}");
            }

            Console.Error.WriteLine($"bench: lifecycle move: {moveSeconds:0.00} s, downtime {move.DowntimeMs:0} ms, {move.Rows} rows, {move.Bytes} bytes");
            // The raw copy again, after the move and the other way (the moved database on the target into the source server): the
            // machine is shared, and one copy alone may meet a burst of the others' load or a cold cache.
            var (rawAfter, _) = await RawCopyAsync(servers, targetServer, sourceServer, database);
            Console.Error.WriteLine($"bench: lifecycle raw pg_dump | pg_restore, target to source: {rawAfter:0.00} s");
            // Not part of the floor: the same copy with an uncompressed archive (pg_dump -Z0), what the pipe costs without zlib.
            var (rawUncompressed, _) = await RawCopyAsync(servers, targetServer, sourceServer, database, "-Z0");
            Console.Error.WriteLine($"bench: lifecycle raw pg_dump -Z0 | pg_restore, target to source: {rawUncompressed:0.00} s");

            var backups = services.GetRequiredService<BackupService>();
            var recorded = await backups.RecordAsync(instanceId, None) as BackupStart.Started
                ?? throw new InvalidOperationException("The backup was not recorded (the tenant is not ready).");
            watch.Restart();
            var backup = await backups.RunAsync(recorded.Backup.Id, None);
            var backupSeconds = watch.Elapsed.TotalSeconds;
            if (backup.Status != BackupStatus.Completed)
            {
                throw new InvalidOperationException($"the backup failed: {backup.Error}");
            }

            Console.Error.WriteLine($"bench: lifecycle backup: {backupSeconds:0.00} s, {backup.SizeBytes} bytes");

            watch.Restart();
            var restore = await services.GetRequiredService<RestoreService>().RunAsync(new RestoreRunInput(instanceId, backup.BackupId), None);
            var restoreSeconds = watch.Elapsed.TotalSeconds;
            if (restore.Status != RestoreResult.Restored)
            {
                throw new InvalidOperationException($"the restore failed: {restore.Error}");
            }

            Console.Error.WriteLine($"bench: lifecycle restore: {restoreSeconds:0.00} s, downtime {restore.DowntimeMs:0} ms, {restore.Rows} rows");
            // The data is where the tenant's own login finds it, with the same password, on the target.
            var after = await CountAsync(targetServer, tenant);
            if (after != rows)
            {
                throw new InvalidOperationException($"after the move and the restore the tenant reads {after} rows, not {rows}");
            }

            AddRows(report, new Figures(size, rows, [rawBefore, rawAfter], rawBytes, move, moveSeconds, backup, backupSeconds, restore, restoreSeconds, rawUncompressed, loadBefore));
        }
        finally
        {
            if (services is not null)
            {
                await services.DisposeAsync();
            }

            NpgsqlConnection.ClearAllPools();
            await CleanUpAsync(servers, container, catalogMade ? catalogName : null, sourceServer, targetServer);
        }
    }

    private sealed record Figures(long DatabaseBytes, long Rows, IReadOnlyList<double> RawRuns, long RawBytes, MoveResult Move, double MoveSeconds,
        BackupResult Backup, double BackupSeconds, RestoreResult Restore, double RestoreSeconds, double RawUncompressedSeconds, string? LoadBefore)
    {
        /// <summary>The floor: the faster of the raw copies.</summary>
        public double RawSeconds => RawRuns.Min();
    }

    private static void AddRows(Report report, Figures f)
    {
        var mb = f.DatabaseBytes / 1048576.0;
        static string N(double value, string format = "0.0") => value.ToString(format, CultureInfo.InvariantCulture);
        static LatencyResult One(double ms) => LatencyResult.Of([ms], 0, TimeSpan.FromMilliseconds(ms));
        var raw = LatencyResult.Of([.. f.RawRuns.Select(r => r * 1000)], 0, TimeSpan.FromSeconds(f.RawRuns.Sum()));
        var move = One(f.MoveSeconds * 1000);
        var ratio = f.MoveSeconds / f.RawSeconds;
        report.Add("lifecycle, raw pg_dump -Fc piped into pg_restore (same binaries)", Key, "raw_copy", raw, 1.0, null, null,
            $"{N(mb)} MB database ({f.Rows} rows), {N(f.RawBytes / 1048576.0)} MB archive; source to target before the move " +
            $"{N(f.RawRuns[0], "0.00")} s, target to source after it {N(f.RawRuns[1], "0.00")} s; the floor (the faster) {N(mb / f.RawSeconds)} MB/s");
        report.Add("lifecycle, raw copy with an uncompressed archive (pg_dump -Fc -Z0), not the floor", Key, "raw_copy_uncompressed",
            One(f.RawUncompressedSeconds * 1000), f.RawUncompressedSeconds / f.RawSeconds, null, null,
            $"target to source after the move, {N(f.RawUncompressedSeconds, "0.00")} s, {N(mb / f.RawUncompressedSeconds)} MB/s: what the copy costs without zlib");
        report.Add("lifecycle, move between pools (MoveService.RunAsync)", Key, "move", move, ratio, null, null,
            $"{N(f.MoveSeconds, "0.00")} s = ×{N(ratio, "0.00")} the raw copy, {N(mb / f.MoveSeconds)} MB/s, {N(f.Move.Bytes / 1048576.0)} MB archive piped; " +
            $"downtime (freeze → unfreeze) {N(f.Move.DowntimeMs ?? double.NaN, "0")} ms");
        report.Add("lifecycle, move downtime (freeze → unfreeze)", Key, "move_downtime", One(f.Move.DowntimeMs ?? double.NaN), null, null);
        report.Add("lifecycle, backup to blob (BackupService.RunAsync)", Key, "backup", One(f.BackupSeconds * 1000), f.BackupSeconds / f.RawSeconds, null, null,
            $"{N(f.BackupSeconds, "0.00")} s, {N(mb / f.BackupSeconds)} MB/s of database, {N((f.Backup.SizeBytes ?? 0) / 1048576.0)} MB blob (Azurite)");
        report.Add("lifecycle, restore in place (RestoreService.RunAsync)", Key, "restore", One(f.RestoreSeconds * 1000), f.RestoreSeconds / f.RawSeconds, null, null,
            $"{N(f.RestoreSeconds, "0.00")} s, {N(mb / f.RestoreSeconds)} MB/s of database; downtime {N(f.Restore.DowntimeMs ?? double.NaN, "0")} ms");
        report.Add("lifecycle, restore downtime (freeze → swap → unfreeze)", Key, "restore_downtime", One(f.Restore.DowntimeMs ?? double.NaN), null, null);
        report.Detail(Key, "figures", new JsonObject
        {
            ["database_bytes"] = f.DatabaseBytes,
            ["database_mb"] = Round(mb),
            ["rows"] = f.Rows,
            ["raw_copy_s"] = Round(f.RawSeconds, 3),
            ["raw_copy_runs_s"] = new JsonArray([.. f.RawRuns.Select(r => (JsonNode)Round(r, 3))]),
            ["raw_copy_archive_bytes"] = f.RawBytes,
            ["raw_copy_mb_per_s"] = Round(mb / f.RawSeconds),
            ["raw_copy_uncompressed_s"] = Round(f.RawUncompressedSeconds, 3),
            ["move_s"] = Round(f.MoveSeconds, 3),
            ["move_service_s"] = Round(f.Move.Seconds, 3),
            ["move_downtime_ms"] = Round(f.Move.DowntimeMs ?? double.NaN, 1),
            ["move_bytes_copied"] = f.Move.Bytes,
            ["move_mb_per_s"] = Round(mb / f.MoveSeconds),
            ["move_archive_mb_per_s"] = Round(f.Move.Bytes / 1048576.0 / f.MoveSeconds),
            ["move_ratio_to_raw_copy"] = Round(f.MoveSeconds / f.RawSeconds, 3),
            ["move_rows_verified"] = f.Move.Rows,
            ["backup_s"] = Round(f.BackupSeconds, 3),
            ["backup_bytes"] = f.Backup.SizeBytes,
            ["backup_mb_per_s"] = Round(mb / f.BackupSeconds),
            ["backup_archive_mb_per_s"] = Round((f.Backup.SizeBytes ?? 0) / 1048576.0 / f.BackupSeconds),
            ["restore_s"] = Round(f.RestoreSeconds, 3),
            ["restore_mb_per_s"] = Round(mb / f.RestoreSeconds),
            ["restore_archive_mb_per_s"] = Round((f.Backup.SizeBytes ?? 0) / 1048576.0 / f.RestoreSeconds),
            ["restore_downtime_ms"] = Round(f.Restore.DowntimeMs ?? double.NaN, 1),
            ["restore_rows_verified"] = f.Restore.Rows,
            ["mb_per_s_is"] = "pg_database_size of the tenant (MiB) over the wall time of the step; *_archive_mb_per_s: the pg_dump -Fc archive's MiB",
            ["load_average_before"] = f.LoadBefore,
            ["load_average_after"] = LoadAverage(),
        });
        report.Note($"lifecycle: a {N(mb)} MB tenant database ({f.Rows} rows); move {N(f.MoveSeconds, "0.00")} s (×{N(ratio, "0.00")} the raw pg_dump | pg_restore floor " +
            $"{N(f.RawSeconds, "0.00")} s), downtime {N(f.Move.DowntimeMs ?? double.NaN, "0")} ms; backup {N(mb / f.BackupSeconds)} MB/s, restore " +
            $"{N(mb / f.RestoreSeconds)} MB/s with {N(f.Restore.DowntimeMs ?? double.NaN, "0")} ms downtime");
    }

    /// <summary>The 1, 5 and 15 minute load averages (Linux): the machine is shared, absolute seconds read against them.</summary>
    private static string? LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ')[..3]) : null;

    private static double Round(double value, int digits = 2) => Bench.Report.Round(value, digits);

    private static async Task<Pool> RegisterAsync(ServiceProvider services, BenchServer server, string name)
    {
        var protector = services.GetRequiredService<SecretProtector>();
        return await services.GetRequiredService<PoolStore>().InsertAsync(new NewPool
        {
            Name = name, Host = "127.0.0.1", Port = server.Port, ServerType = ServerType.Shared, Status = PoolStatus.Active,
            MaxInstances = 10, Driver = "registered", AdminUser = "postgres",
            AdminPasswordEncrypted = protector.Protect(server.Password, PoolAdminPasswords.Purpose(name)),
        }, "bench", None);
    }

    private static NpgsqlConnection TenantConnection(BenchServer server, AllocationOutcome.Allocated tenant) => new(new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1", Port = server.Port, Database = tenant.Tenant.DbName, Username = tenant.Tenant.DbUser,
        Password = tenant.Password!.Reveal(), Pooling = false, CommandTimeout = 600,
    }.ConnectionString);

    /// <summary>Batches of rows written by the tenant's own login until the database reaches about 100 MB; its rows and real size.</summary>
    private static async Task<(long Rows, long Bytes)> FillAsync(BenchServer server, AllocationOutcome.Allocated tenant)
    {
        await using var conn = TenantConnection(server, tenant);
        await conn.OpenAsync();
        await using (var create = new NpgsqlCommand("CREATE TABLE bench_pad (id bigint PRIMARY KEY, pad text NOT NULL)", conn))
        {
            await create.ExecuteNonQueryAsync();
        }

        long rows = 0;
        while (true)
        {
            // 128 hex characters of four different digests per row: little for pg_dump's compression to fold.
            await using (var insert = new NpgsqlCommand("""
                INSERT INTO bench_pad SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) || md5((g * 31)::text)
                FROM generate_series(@from, @to) g
                """, conn))
            {
                insert.Parameters.AddWithValue("from", rows + 1);
                insert.Parameters.AddWithValue("to", rows + RowsPerBatch);
                await insert.ExecuteNonQueryAsync();
            }

            rows += RowsPerBatch;
            await using var size = new NpgsqlCommand("SELECT pg_database_size(current_database())", conn);
            var bytes = (long)(await size.ExecuteScalarAsync())!;
            if (bytes >= TargetBytes)
            {
                await using var analyze = new NpgsqlCommand("ANALYZE bench_pad", conn);
                await analyze.ExecuteNonQueryAsync();
                return (rows, bytes);
            }
        }
    }

    private static async Task<long> CountAsync(BenchServer server, AllocationOutcome.Allocated tenant)
    {
        await using var conn = TenantConnection(server, tenant);
        await conn.OpenAsync();
        await using var count = new NpgsqlCommand("SELECT count(*) FROM bench_pad", conn);
        return (long)(await count.ExecuteScalarAsync())!;
    }

    /// <summary>
    /// <c>pg_dump -Fc db | pg_restore --no-owner --no-acl --exit-on-error -d raw</c> in one shell pipeline (the passwords in a
    /// 0600 password file of the run's, never on a command line), timed alone; the empty database is made before the timer
    /// and dropped after. Its seconds and the archive's bytes (a second, untimed dump's size).
    /// </summary>
    /// <param name="dumpOptions">More <c>pg_dump</c> options (<c>-Z0</c>: an uncompressed archive); its archive is not measured then (0 bytes).</param>
    private static async Task<(double Seconds, long Bytes)> RawCopyAsync(Servers servers, BenchServer source, BenchServer target, string database,
        string dumpOptions = "")
    {
        var bin = LocalPostgres.FindBinDir(null, "pg_dump");
        var passFile = Path.Combine(servers.Root, $".pgpass-{Guid.NewGuid():N}");
        await File.WriteAllTextAsync(passFile, "");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(passFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        await File.WriteAllTextAsync(passFile, $"127.0.0.1:{source.Port}:*:postgres:{source.Password}\n127.0.0.1:{target.Port}:*:postgres:{target.Password}\n");
        try
        {
            await AdminAsync(target, $"CREATE DATABASE {RawDatabase} TEMPLATE template0");
            var dump = $"\"$1/pg_dump\" -Fc {dumpOptions} --no-password -h 127.0.0.1 -p {source.Port} -U postgres -d {database}";
            var watch = Stopwatch.StartNew();
            await ShellAsync(passFile, bin,
                $"set -o pipefail; {dump} | \"$1/pg_restore\" --no-owner --no-acl --exit-on-error --no-password -h 127.0.0.1 -p {target.Port} -U postgres -d {RawDatabase}");
            var seconds = watch.Elapsed.TotalSeconds;
            var bytes = dumpOptions.Length > 0 ? 0 : long.Parse((await ShellAsync(passFile, bin, $"set -o pipefail; {dump} | wc -c")).Trim(), CultureInfo.InvariantCulture);
            return (seconds, bytes);
        }
        finally
        {
            File.Delete(passFile);
            await AdminAsync(target, $"DROP DATABASE IF EXISTS {RawDatabase}");
        }
    }

    private static async Task<string> ShellAsync(string passFile, string bin, string script)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-c", script, "bash", bin })
        {
            start.ArgumentList.Add(a);
        }

        start.Environment.Remove("PGPASSWORD");
        start.Environment["PGPASSFILE"] = passFile;
        using var process = Process.Start(start) ?? throw new InvalidOperationException("bash did not start.");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return process.ExitCode == 0
            ? await output
            : throw new InvalidOperationException($"the raw pg_dump | pg_restore failed ({process.ExitCode}): {PgClientTools.Trim(await error)}");
    }

    private static async Task AdminAsync(BenchServer server, string sql)
    {
        await using var conn = new NpgsqlConnection(server.ConnectionString() + ";Pooling=false");
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn) { CommandTimeout = 300 };
        await cmd.ExecuteNonQueryAsync();
    }

    /// <summary>The run's container, its catalog database and both servers: each step on its own, so one failing leaves none of the others behind.</summary>
    private static async Task CleanUpAsync(Servers servers, string container, string? catalog, BenchServer? source, BenchServer? target)
    {
        try
        {
            await new BlobServiceClient(StorageConnection).GetBlobContainerClient(container).DeleteIfExistsAsync();
        }
        catch (Exception e) when (e is Azure.RequestFailedException or HttpRequestException or AggregateException)
        {
            Console.Error.WriteLine($"bench: lifecycle: the container {container} was not deleted: {e.Message.Split('\n')[0]}");
        }

        foreach (var server in new[] { source, target })
        {
            try
            {
                if (server is not null)
                {
                    await servers.StopServerAsync(server);
                }
            }
            catch (IOException e)
            {
                Console.Error.WriteLine($"bench: lifecycle: the server {server!.Name} was stopped, its folder not deleted (the run's root goes at the end): {e.Message}");
            }
        }

        if (catalog is not null)
        {
            try
            {
                await AdminAsync(servers.Catalog, $"DROP DATABASE IF EXISTS \"{catalog}\" WITH (FORCE)");
            }
            catch (NpgsqlException e)
            {
                Console.Error.WriteLine($"bench: lifecycle: the catalog database {catalog} was not dropped: {e.Message}");
            }
        }
    }
}
