using System.Diagnostics;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// The process driver's data root made unusable for the <c>postgres</c> user, so <c>initdb</c> really fails (a driver that
/// cannot make a server), and healed. Used by the driver-fault proofs and the dashboard's "run in flight" scene.
/// </summary>
internal static class PoolDataRoot
{
    public static void Break(string path)
    {
        if (Environment.IsPrivilegedProcess)
        {
            Run("chown", "root:root", path);
        }

        Run("chmod", Environment.IsPrivilegedProcess ? "700" : "500", path);
    }

    public static void Heal(string path)
    {
        if (Environment.IsPrivilegedProcess)
        {
            Run("chown", "postgres:postgres", path);
        }

        Run("chmod", "755", path);
    }

    private static void Run(string file, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{file} {string.Join(' ', args)} failed: {process.StandardError.ReadToEnd()}");
    }
}
