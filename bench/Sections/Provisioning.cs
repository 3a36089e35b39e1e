using System.Diagnostics;
using Npgsql;

namespace TenantDb.Bench.Sections;

/// <summary>
/// Provisioning: a raw <c>initdb</c> + start until <c>SELECT 1</c> answers, against the app's <c>ProvisionPool</c> orchestration
/// (<c>POST /api/database/admin/provision-pool</c> through LocalHost, process driver) until the pool is <c>active</c>, one after
/// the other, <see cref="BenchOptions.ProvisioningRuns"/> times each. The swarm driver only when the Docker engine runs.
/// </summary>
public static class Provisioning
{
    private const string Key = "provisioning";

    public static async Task RunAsync(Servers servers, BenchOptions options, Report report)
    {
        var raw = new List<double>();
        var app = new List<double>();
        await using (var host = await LocalHostProcess.StartAsync(servers, "provision", new Dictionary<string, string> { ["Pools__WarmStock"] = "0" }))
        {
            for (var i = 0; i < options.ProvisioningRuns; i++)
            {
                var watch = Stopwatch.StartNew();
                var server = await servers.StartServerAsync($"raw-provision-{i}");
                await using (var conn = new NpgsqlConnection(server.ConnectionString() + ";Pooling=false"))
                {
                    await conn.OpenAsync();
                    await using var select = new NpgsqlCommand("SELECT 1", conn);
                    await select.ExecuteScalarAsync();
                }

                raw.Add(watch.Elapsed.TotalMilliseconds);
                await servers.StopServerAsync(server);

                var (_, took) = await host.ProvisionPoolAsync(TimeSpan.FromMilliseconds(50));
                app.Add(took.TotalMilliseconds);
                Console.Error.WriteLine($"bench: provisioning {i + 1}: raw {raw[^1]:0} ms, ProvisionPool {app[^1]:0} ms");
            }
        }

        var rawResult = LatencyResult.Of(raw, 0, TimeSpan.FromMilliseconds(raw.Sum()));
        var appResult = LatencyResult.Of(app, 0, TimeSpan.FromMilliseconds(app.Sum()));
        report.Add("provisioning, raw initdb + start (process)", Key, "raw_process", rawResult, 1.0, null, null,
            $"{raw.Count} runs, one after the other; until SELECT 1 answers");
        report.Add("provisioning, ProvisionPool to active (process)", Key, "provision_pool_process", appResult, appResult.P50 / rawResult.P50, null,
            new Goal("p50 ≤ 1.3× raw", appResult.P50 / rawResult.P50 <= 1.3),
            "POST database/admin/provision-pool through LocalHost, then GET database/admin/pools/{id} every 50 ms until active");
        if (!await DockerEngineRunsAsync())
        {
            report.Add("provisioning, swarm", Key, "swarm", null, null, null, null, "skipped: no engine");
            return;
        }

        await SwarmAsync(servers, options, report);
    }

    /// <summary>
    /// The swarm driver (host networking, the local image): a raw <c>docker service create</c> of the same image until
    /// <c>SELECT 1</c> answers, against ProvisionPool with <c>Provisioning:Driver</c> swarm. Every service is labelled with
    /// the run's owner and removed at the end.
    /// </summary>
    private static async Task SwarmAsync(Servers servers, BenchOptions options, Report report)
    {
        var owner = "tenantdb-bench-" + Guid.NewGuid().ToString("N")[..8];
        var raw = new List<double>();
        var app = new List<double>();
        try
        {
            await using var host = await LocalHostProcess.StartAsync(servers, "provision-swarm", new Dictionary<string, string>
            {
                ["Provisioning__Driver"] = "swarm",
                ["Provisioning__Owner"] = owner,
                ["Provisioning__Docker__Image"] = Image,
                ["Provisioning__Swarm__Network"] = "host",
                ["Pools__WarmStock"] = "0",
                ["DOCKER_HOST"] = DockerHost,
            });
            // Pool names (and so the swarm driver's volume names) count from 1 in every catalog: start this one's elsewhere, so
            // its pools never meet a volume another catalog left on the engine (an old volume keeps its old admin password).
            await using (var conn = new NpgsqlConnection(host.CatalogConnectionString))
            {
                await conn.OpenAsync();
                await using var restart = new NpgsqlCommand($"ALTER SEQUENCE pool_name_seq RESTART WITH {Random.Shared.Next(1000, 9000)}", conn);
                await restart.ExecuteNonQueryAsync();
            }

            for (var i = 0; i < options.ProvisioningRuns; i++)
            {
                var watch = Stopwatch.StartNew();
                var port = TenantDb.Functions.Drivers.LocalPostgres.FreeLoopbackPort();
                var password = TenantDb.Functions.Secrets.PasswordGenerator.Generate(32);
                await DockerAsync(new Dictionary<string, string> { ["POSTGRES_PASSWORD"] = password },
                    "service", "create", "--detach", "--name", $"{owner}-raw-{i}", "--label", $"tenantdb.owner={owner}", "--network", "host",
                    "--mount", $"type=volume,target=/var/lib/postgresql/data,volume-label=tenantdb.owner={owner}",
                    "-e", "POSTGRES_USER=postgres", "-e", "POSTGRES_PASSWORD", "-e", "POSTGRES_DB=postgres", Image,
                    "postgres", "-c", $"port={port}", "-c", "listen_addresses=127.0.0.1");
                var server = new BenchServer("raw-swarm", port, password, "");
                while (true)
                {
                    try
                    {
                        await using var conn = new NpgsqlConnection(server.ConnectionString() + ";Pooling=false;Timeout=2");
                        await conn.OpenAsync();
                        await using var select = new NpgsqlCommand("SELECT 1", conn);
                        await select.ExecuteScalarAsync();
                        break;
                    }
                    catch (Exception e) when ((e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException) && watch.Elapsed < TimeSpan.FromMinutes(3))
                    {
                        await Task.Delay(100);
                    }
                }

                raw.Add(watch.Elapsed.TotalMilliseconds);
                await DockerAsync(NoEnvironment, "service", "rm", $"{owner}-raw-{i}");
                var (_, took) = await host.ProvisionPoolAsync(TimeSpan.FromMilliseconds(50));
                app.Add(took.TotalMilliseconds);
                Console.Error.WriteLine($"bench: swarm provisioning {i + 1}: raw {raw[^1]:0} ms, ProvisionPool {app[^1]:0} ms");
            }
        }
        finally
        {
            await RemoveDockerObjectsAsync(owner);
        }

        var rawResult = LatencyResult.Of(raw, 0, TimeSpan.FromMilliseconds(raw.Sum()));
        var appResult = LatencyResult.Of(app, 0, TimeSpan.FromMilliseconds(app.Sum()));
        report.Add("provisioning, raw docker service create (swarm)", Key, "raw_swarm", rawResult, 1.0, null, null,
            $"{raw.Count} runs, host network, {Image}; until SELECT 1 answers");
        report.Add("provisioning, ProvisionPool to active (swarm)", Key, "provision_pool_swarm", appResult, appResult.P50 / rawResult.P50, null,
            new Goal("p50 ≤ 1.3× raw", appResult.P50 / rawResult.P50 <= 1.3), "Provisioning:Driver swarm, host network");
    }

    /// <summary>Every service, then (once their containers are gone) every volume labelled with the run's owner.</summary>
    private static async Task RemoveDockerObjectsAsync(string owner)
    {
        var filter = $"label=tenantdb.owner={owner}";
        foreach (var id in Lines(await DockerAsync(NoEnvironment, "service", "ls", "-q", "--filter", filter)))
        {
            await DockerAsync(NoEnvironment, "service", "rm", id);
        }

        var deadline = DateTimeOffset.UtcNow.AddMinutes(1);
        while (Lines(await DockerAsync(NoEnvironment, "ps", "-aq", "--filter", filter)).Length > 0 && DateTimeOffset.UtcNow < deadline)
        {
            await Task.Delay(500);
        }

        foreach (var volume in Lines(await DockerAsync(NoEnvironment, "volume", "ls", "-q", "--filter", filter)))
        {
            await DockerAsync(NoEnvironment, "volume", "rm", "-f", volume);
        }
    }

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private const string Image = "tenantdb/postgres:15-local";

    private static readonly Dictionary<string, string> NoEnvironment = [];

    private static string DockerHost => Environment.GetEnvironmentVariable("DOCKER_HOST") ?? "unix:///run/tenantdb-docker/docker.sock";

    /// <summary>Runs the docker CLI against the private engine; its output, or an exception naming the command (never the environment).</summary>
    private static async Task<string> DockerAsync(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var start = new ProcessStartInfo("docker", args) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["DOCKER_HOST"] = DockerHost;
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        using var docker = Process.Start(start)!;
        var output = docker.StandardOutput.ReadToEndAsync();
        var error = docker.StandardError.ReadToEndAsync();
        await docker.WaitForExitAsync();
        return docker.ExitCode == 0 ? await output : throw new InvalidOperationException($"docker {args[0]} {args[1]} failed: {await error}");
    }

    /// <summary>Whether the private Docker engine (infra/docker/engine.sh) answers.</summary>
    private static async Task<bool> DockerEngineRunsAsync()
    {
        try
        {
            var start = new ProcessStartInfo("docker", ["info", "--format", "{{.ServerVersion}}"]) { RedirectStandardOutput = true, RedirectStandardError = true };
            start.Environment["DOCKER_HOST"] = DockerHost;
            using var docker = Process.Start(start)!;
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await docker.WaitForExitAsync(timeout.Token);
            return docker.ExitCode == 0;
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or OperationCanceledException)
        {
            return false;
        }
    }
}
