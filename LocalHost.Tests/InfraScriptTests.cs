using System.Diagnostics;
using System.Net.Sockets;
using TenantDb.Functions.Drivers;

namespace TenantDb.LocalHost.Tests;

/// <summary>
/// infra/azurite.sh and infra/run.sh, run as a newcomer runs them (bounded): stop means stopped, and a second run on the
/// same data refuses instead of starting a second set of processes. Azurite runs on ports of its own here, never the
/// shared 10000-10002.
/// </summary>
[Trait("Category", Tier.EndToEnd)]
public sealed class InfraScriptTests
{
    private static readonly string Root = FindRoot();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "infra", "run.sh")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("infra/run.sh not found above the test binaries.");
    }

    private static async Task<(int Exit, string Output)> RunAsync(string script, IDictionary<string, string> env, params string[] args)
    {
        var start = new ProcessStartInfo("bash", [Path.Combine(Root, "infra", script), .. args])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Root,
        };
        foreach (var (key, value) in env)
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout + await stderr);
    }

    private static bool Listening(int port)
    {
        try
        {
            using var client = new TcpClient();
            client.Connect("127.0.0.1", port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static int FreePortBlock()
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var port = Random.Shared.Next(30000, 40000);
            if (!Listening(port) && !Listening(port + 1) && !Listening(port + 2))
            {
                return port;
            }
        }

        throw new InvalidOperationException("No three free ports in a row.");
    }

    private static bool Alive(int pid)
    {
        try
        {
            return !Process.GetProcessById(pid).HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    [Fact]
    [Trait("Issue9", "22")]
    public async Task AzuriteStop_ReturnsOnlyWhenGoneAndPortsFree_QuickRestartKeepsOneProcess()
    {
        Assert.True(File.Exists(Path.Combine(Root, ".local", "azurite", "node_modules", ".bin", "azurite")), "Azurite is not installed (infra/prerequisites.sh azurite).");
        var data = Path.Combine(Path.GetTempPath(), "tenantdb-azurite-" + Guid.NewGuid().ToString("N")[..8]);
        var port = FreePortBlock();
        var env = new Dictionary<string, string> { ["TENANTDB_AZURITE_PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        try
        {
            Assert.Equal(0, (await RunAsync("azurite.sh", env, "start", data)).Exit);
            var first = int.Parse(File.ReadAllText(Path.Combine(data, "azurite.pid")).Trim(), System.Globalization.CultureInfo.InvariantCulture);

            var again = await RunAsync("azurite.sh", env, "start", data);
            Assert.Equal(0, again.Exit);
            Assert.Contains("reusing", again.Output);
            Assert.Equal(first, int.Parse(File.ReadAllText(Path.Combine(data, "azurite.pid")).Trim(), System.Globalization.CultureInfo.InvariantCulture));

            var stop = await RunAsync("azurite.sh", env, "stop", data);
            Assert.Equal(0, stop.Exit);
            Assert.False(Alive(first), "azurite.sh stop returned while Azurite still ran");
            Assert.False(Listening(port) || Listening(port + 1) || Listening(port + 2), "azurite.sh stop returned while its ports were in use");

            Assert.Equal(0, (await RunAsync("azurite.sh", env, "start", data)).Exit);
            var second = int.Parse(File.ReadAllText(Path.Combine(data, "azurite.pid")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
            Assert.NotEqual(first, second);
            Assert.Equal(0, (await RunAsync("azurite.sh", env, "stop", data)).Exit);
            Assert.False(Alive(second));
        }
        finally
        {
            await RunAsync("azurite.sh", env, "stop", data);
            Directory.Delete(data, recursive: true);
        }
    }

    /// <summary>
    /// infra/leftovers.sh (test.sh's leftover check, issue 11): a PostgreSQL server the run started and left running is
    /// listed, stopped and counted; one a different run (or session) started at the same time is not touched.
    /// </summary>
    [Fact]
    public async Task LeftoverCheck_StrayServerOfTheRun_IsListedStoppedAndCounted_AnotherRunsServerIsLeftAlone()
    {
        var root = Path.Combine(Path.GetTempPath(), "tenantdb-leftovers-" + Guid.NewGuid().ToString("N")[..8]);
        var run = "leftover-test-" + Guid.NewGuid().ToString("N")[..8];
        // Docker is not this test's subject: an engine that does not answer keeps the check to processes, so it can never
        // remove Docker objects of the run this test runs in.
        var env = new Dictionary<string, string> { ["TENANTDB_SUITE_RUN"] = run, ["DOCKER_HOST"] = $"unix://{root}/no-docker.sock" };
        var postgres = new LocalPostgres(LocalPostgres.FindBinDir(null));
        var ours = Path.Combine(root, "ours");
        var theirs = Path.Combine(root, "theirs");
        Directory.CreateDirectory(root);
        try
        {
            if (Environment.IsPrivilegedProcess)
            {
                using var chown = Process.Start("chown", ["postgres:postgres", root])!;
                await chown.WaitForExitAsync();
            }

            foreach (var dir in (string[])[ours, theirs])
            {
                await postgres.InitAsync(dir, LocalPostgres.FreeLoopbackPort(), "postgres", TenantDb.Functions.Secrets.PasswordGenerator.Generate(32), null, CancellationToken.None);
            }

            var snapshot = Path.Combine(root, "before.txt");
            Assert.Equal(0, (await RunAsync("leftovers.sh", env, "snapshot", snapshot)).Exit);
            await StartServerOfRunAsync(ours, run);
            await StartServerOfRunAsync(theirs, "another-run");
            var oursPid = LocalPostgres.PostmasterPid(ours)!.Value;
            var theirsPid = LocalPostgres.PostmasterPid(theirs)!.Value;

            var check = await RunAsync("leftovers.sh", env, "check", snapshot);

            Assert.Equal(1, check.Exit);
            Assert.Contains("proof cleanup: leftover_processes=1 leftover_docker=0", check.Output);
            Assert.Contains($"process {oursPid} left running", check.Output);
            Assert.DoesNotContain(theirs, check.Output);
            Assert.False(Alive(oursPid), "the run's stray server still runs after the check");
            Assert.True(Alive(theirsPid), "the check stopped a server another run started");

            var again = await RunAsync("leftovers.sh", env, "check", snapshot);
            Assert.Equal(0, again.Exit);
            Assert.Contains("proof cleanup: leftover_processes=0 leftover_docker=0", again.Output);
        }
        finally
        {
            foreach (var dir in (string[])[ours, theirs])
            {
                if (await postgres.IsRunningAsync(dir, CancellationToken.None))
                {
                    await postgres.StopAsync(dir, CancellationToken.None, immediate: true);
                }
            }

            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>pg_ctl start with TENANTDB_SUITE_RUN=<paramref name="run"/> in its environment, as a test run's child would have it.</summary>
    private static async Task StartServerOfRunAsync(string dataDir, string run)
    {
        string[] pgCtl = [Path.Combine(LocalPostgres.FindBinDir(null), "pg_ctl"), "-D", dataDir, "-l", Path.Combine(dataDir, "server.log"), "-w", "-t", "60", "start"];
        var start = Environment.IsPrivilegedProcess
            ? new ProcessStartInfo("runuser", ["-u", "postgres", "--", .. pgCtl])
            : new ProcessStartInfo(pgCtl[0], pgCtl[1..]);
        start.WorkingDirectory = "/";
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.Environment["TENANTDB_SUITE_RUN"] = run;
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, $"pg_ctl start failed: {await stderr}");
    }

    [Fact]
    [Trait("Issue9", "22")]
    public async Task RunScript_SecondStartOnTheSameHome_RefusesAndStartsNothing()
    {
        var home = Path.Combine(Path.GetTempPath(), "tenantdb-run-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(home);
        // A first run holds the lock (here: flock itself, for as long as the test needs).
        using var holder = Process.Start(new ProcessStartInfo("flock", [Path.Combine(home, "run.lock"), "sleep", "60"]))!;
        try
        {
            for (var i = 0; i < 50 && !File.Exists(Path.Combine(home, "run.lock")); i++)
            {
                await Task.Delay(100);
            }

            await Task.Delay(200);
            var second = await RunAsync("run.sh", new Dictionary<string, string> { ["TENANTDB_HOME"] = home, ["TENANTDB_PORT"] = FreePortBlock().ToString(System.Globalization.CultureInfo.InvariantCulture) });

            Assert.Equal(1, second.Exit);
            Assert.Contains("already running", second.Output);
            Assert.False(Directory.Exists(Path.Combine(home, "catalog")), "the refused run started a catalog");
            Assert.False(Directory.Exists(Path.Combine(home, "azurite")), "the refused run started Azurite");
        }
        finally
        {
            holder.Kill(entireProcessTree: true); // flock and its sleep
            await holder.WaitForExitAsync();
            Directory.Delete(home, recursive: true);
        }
    }
}
