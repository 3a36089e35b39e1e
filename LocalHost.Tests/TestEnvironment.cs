using System.Diagnostics;
using System.Net.Sockets;
using System.Reflection;

namespace TenantDb.LocalHost.Tests;

/// <summary>Where the sample app is built, and Azurite on 127.0.0.1:10000-10002 (started by infra/azurite.sh when needed).</summary>
internal static class TestEnvironment
{
    private static readonly SemaphoreSlim AzuriteGate = new(1, 1);

    public static string SampleAppDirectory { get; } = typeof(TestEnvironment).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "SampleAppDirectory").Value!;

    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    public static async Task EnsureAzuriteAsync()
    {
        await AzuriteGate.WaitAsync();
        try
        {
            if (await IsListeningAsync(10001) && await IsListeningAsync(10002))
            {
                return;
            }

            if (Environment.GetEnvironmentVariable("TENANTDB_REQUIRE_AZURITE") == "1")
            {
                throw new InvalidOperationException("TENANTDB_REQUIRE_AZURITE=1 but Azurite is not listening on 127.0.0.1:10001/10002.");
            }

            ProcessStartInfo start = new(Path.Combine(RepositoryRoot, "infra", "azurite.sh"))
            {
                ArgumentList = { "start", Path.Combine(RepositoryRoot, ".local", "azurite-data") },
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var process = Process.Start(start) ?? throw new InvalidOperationException("infra/azurite.sh did not start.");
            using CancellationTokenSource timeout = new(TimeSpan.FromMinutes(3));
            var output = process.StandardOutput.ReadToEndAsync(timeout.Token);
            var error = process.StandardError.ReadToEndAsync(timeout.Token);
            await process.WaitForExitAsync(timeout.Token);
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"infra/azurite.sh start failed: {await output}{await error}");
            }

            if ((await output).Contains("azurite: listening on", StringComparison.Ordinal))
            {
                // Started here (not reused): stopped again when the test run ends, pass or fail (issue 11).
                AppDomain.CurrentDomain.ProcessExit += (_, _) => StopAzurite(start.ArgumentList[1]);
            }
        }
        finally
        {
            AzuriteGate.Release();
        }
    }

    private static void StopAzurite(string dataDir)
    {
        using var stop = Process.Start(new ProcessStartInfo(Path.Combine(RepositoryRoot, "infra", "azurite.sh")) { ArgumentList = { "stop", dataDir } });
        stop?.WaitForExit(TimeSpan.FromSeconds(30));
    }

    private static async Task<bool> IsListeningAsync(int port)
    {
        using TcpClient client = new();
        try
        {
            using CancellationTokenSource timeout = new(TimeSpan.FromSeconds(2));
            await client.ConnectAsync("127.0.0.1", port, timeout.Token);
            return true;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return false;
        }
    }

    private static string FindRepositoryRoot()
    {
        for (DirectoryInfo? directory = new(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Functions.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("Functions.sln not found above the test output folder.");
    }
}
