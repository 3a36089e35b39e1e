using System.Diagnostics;
using TenantDb.Functions.Secrets;
using TenantDb.Functions.Tests.Infrastructure;
using TenantDb.Functions.Drivers;

namespace TenantDb.Functions.Tests.Provisioning;

/// <summary>
/// The file <c>initdb --pwfile</c> reads the pool admin password from (issue 9, item 10): private (0600) from the moment it
/// exists, readable by the server's OS user, and gone after success, failure and cancellation. A stand-in <c>initdb</c>
/// script observes the file while "initdb" runs (mode, owner), then succeeds, fails or hangs; the success path runs the real one.
/// </summary>
[Collection(PostgresCollection.Name)]
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
[Trait("Category", Tier.Database)]
public sealed class PasswordFileTests(PostgresFixture fixture)
{
    private static readonly string ServerUser = Environment.IsPrivilegedProcess ? "postgres" : Environment.UserName;

    // The same place LocalPostgres uses, spelled out so a change there is a visible change here.
    private static string PasswordFileOf(string dataDir) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(dataDir))!, $".{Path.GetFileName(dataDir)}.pw");

    /// <summary>A folder the server user can traverse, with a fake <c>initdb</c> that records the password file's mode and owner.</summary>
    private static string FakeBinDir(string root, string behaviour)
    {
        var bin = Path.Combine(root, "bin");
        Directory.CreateDirectory(bin);
        var script = Path.Combine(bin, "initdb");
        File.WriteAllText(script, $$"""
            #!/bin/sh
            for a in "$@"; do case "$a" in --pwfile=*) f="${a#--pwfile=}";; esac; done
            while [ $# -gt 0 ]; do if [ "$1" = "-D" ]; then d="$2"; fi; shift; done
            stat -c '%a %U' "$f" > "$d/observed"
            echo $$ > "$d/initdb.pid"
            case "{{behaviour}}" in
              fail) echo "initdb: simulated failure" >&2; exit 1 ;;
              hang) exec sleep 60 ;;
            esac
            exit 0
            """.ReplaceLineEndings("\n"));
        File.SetUnixFileMode(script, (UnixFileMode)0b111_101_101);
        return bin;
    }

    private static string NewRoot()
    {
        var root = Path.Combine(PostgresFixture.Root, $"pwfile-{Guid.NewGuid():N}"[..18]);
        Directory.CreateDirectory(root);
        return root;
    }

    [Fact]
    [Trait("Issue9", "10")]
    public async Task InitPasswordFile_InitdbFails_WasPrivateToServerUserAndIsGone()
    {
        var root = NewRoot();
        var dataDir = Path.Combine(root, "pool-fail");
        var pwFile = PasswordFileOf(dataDir);
        // A leftover of a killed run, world-readable: it must not lend its mode to the new file.
        await File.WriteAllTextAsync(pwFile, "stale");
        File.SetUnixFileMode(pwFile, (UnixFileMode)0b110_100_100);
        var local = new LocalPostgres(FakeBinDir(root, "fail"));

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            local.InitAsync(dataDir, LocalPostgres.FreeLoopbackPort(), "tenantdb_admin", PasswordGenerator.Generate(40), null, CancellationToken.None));

        Assert.Contains("simulated failure", error.Message);
        Assert.Equal($"600 {ServerUser}", (await File.ReadAllTextAsync(Path.Combine(dataDir, "observed"))).Trim());
        Assert.False(File.Exists(pwFile));
    }

    [Fact]
    [Trait("Issue9", "10")]
    public async Task InitPasswordFile_Cancelled_InitdbKilledAndFileGone()
    {
        var root = NewRoot();
        var dataDir = Path.Combine(root, "pool-hang");
        var pwFile = PasswordFileOf(dataDir);
        var local = new LocalPostgres(FakeBinDir(root, "hang"));
        using var cts = new CancellationTokenSource();
        var pidFile = Path.Combine(dataDir, "initdb.pid");

        var init = local.InitAsync(dataDir, LocalPostgres.FreeLoopbackPort(), "tenantdb_admin", PasswordGenerator.Generate(40), null, cts.Token);
        var deadline = DateTimeOffset.UtcNow.AddSeconds(20);
        while (!File.Exists(pidFile) || (await File.ReadAllTextAsync(pidFile)).Trim().Length == 0)
        {
            Assert.True(DateTimeOffset.UtcNow < deadline, "the fake initdb did not start");
            await Task.Delay(50);
        }

        var pid = int.Parse((await File.ReadAllTextAsync(pidFile)).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(File.Exists(pwFile)); // it is there while initdb runs
        Assert.Equal($"600 {ServerUser}", (await File.ReadAllTextAsync(Path.Combine(dataDir, "observed"))).Trim());
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => init);
        Assert.False(File.Exists(pwFile));
        var gone = DateTimeOffset.UtcNow.AddSeconds(10);
        while (IsAlive(pid))
        {
            Assert.True(DateTimeOffset.UtcNow < gone, "the initdb child outlived the cancellation");
            await Task.Delay(100);
        }
    }

    [Fact]
    [Trait("Issue9", "10")]
    public async Task InitPasswordFile_RealInitdbSucceeds_AdminLogsInAndFileGone()
    {
        var root = NewRoot();
        if (Environment.IsPrivilegedProcess)
        {
            using var chown = Process.Start("chown", ["postgres:postgres", root])!;
            await chown.WaitForExitAsync();
        }

        var dataDir = Path.Combine(root, "pool-ok");
        var password = PasswordGenerator.Generate(40);

        var port = LocalPostgres.FreeLoopbackPort();

        await fixture.Local.InitAsync(dataDir, port, "tenantdb_admin", password, null, CancellationToken.None);

        Assert.False(File.Exists(PasswordFileOf(dataDir)));
        Assert.Empty(Directory.GetFiles(root, "*.pw", SearchOption.AllDirectories));
        await fixture.Local.StartAsync(dataDir, CancellationToken.None);
        try
        {
            var probe = await TenantDb.Functions.Pools.PoolProbe.ProbeAsync("127.0.0.1", port, "tenantdb_admin", password, TimeSpan.FromSeconds(5), CancellationToken.None);
            Assert.True(probe.Ok, probe.Error);
        }
        finally
        {
            await fixture.Local.StopAsync(dataDir, CancellationToken.None, immediate: true);
        }
    }

    [Fact]
    [Trait("Issue9", "10")]
    public async Task ProcessDriverDelete_PasswordFileLeftByAKilledRun_IsRemoved()
    {
        var root = NewRoot();
        var driver = new ProcessPoolProvisioner(Microsoft.Extensions.Options.Options.Create(new ProvisioningOptions
        {
            Process = new ProcessDriverOptions { DataRoot = root },
        }));
        var name = $"killed-{Guid.NewGuid():N}"[..15];
        var pwFile = PasswordFileOf(Path.Combine(root, name));
        await File.WriteAllTextAsync(pwFile, "left by a killed run");

        await driver.DeleteAsync(new PoolServerRef(name, null, "", 0, "", ""), CancellationToken.None);

        Assert.False(File.Exists(pwFile));
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited && File.Exists($"/proc/{pid}/stat") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ", StringComparison.Ordinal);
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
