using System.Diagnostics;
using System.Net.Sockets;

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
            holder.Kill();
            await holder.WaitForExitAsync();
            Directory.Delete(home, recursive: true);
        }
    }
}
