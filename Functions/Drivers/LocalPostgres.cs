using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace TenantDb.Functions.Drivers;

/// <summary>
/// A PostgreSQL server as a local process: <c>initdb</c> + <c>pg_ctl</c> on a loopback port, data in one folder.
/// PostgreSQL refuses to run as root, so as root every command runs as the <c>postgres</c> OS user.
/// </summary>
public sealed class LocalPostgres(string binDir, string osUser = "postgres")
{
    /// <summary>How long a finished command's output may take to drain before it is reported without it.</summary>
    private static readonly TimeSpan OutputGrace = TimeSpan.FromSeconds(2);

    public const string LogFileName = "server.log";

    /// <summary>
    /// The configured folder, else the newest <c>/usr/lib/postgresql/&lt;major&gt;/bin</c> holding <paramref name="tool"/> (the server's
    /// <c>initdb</c> by default; the backups ask for <c>pg_dump</c>, which a client-only install such as the container image has).
    /// </summary>
    public static string FindBinDir(string? configured, string tool = "initdb")
    {
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return configured;
        }

        var versions = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql")
                .Select(d => (Dir: d, Version: int.TryParse(Path.GetFileName(d), out var v) ? v : 0))
                .Where(x => File.Exists(Path.Combine(x.Dir, "bin", tool)))
                .OrderByDescending(x => x.Version)
                .Select(x => Path.Combine(x.Dir, "bin"))
            : [];
        return versions.FirstOrDefault() ?? throw new InvalidOperationException(
            $"No PostgreSQL binaries with {tool} found under /usr/lib/postgresql; install postgresql (or postgresql-client) or set Provisioning:Process:BinDir.");
    }

    public static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Where <see cref="InitAsync"/> puts the admin password for <c>initdb --pwfile</c> (0600, removed when initdb ends).</summary>
    public static string PasswordFileOf(string dataDir) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(dataDir))!, $".{Path.GetFileName(dataDir)}.pw");

    public static bool IsInitialized(string dataDir) => File.Exists(Path.Combine(dataDir, "PG_VERSION"));

    /// <summary>Creates the cluster (SCRAM for TCP, no Unix socket) listening on 127.0.0.1:<paramref name="port"/>.</summary>
    public async Task InitAsync(string dataDir, int port, string superuser, string password, IReadOnlyDictionary<string, string>? settings, CancellationToken ct)
    {
        dataDir = Path.GetFullPath(dataDir); // the commands run from "/" (see RunRawAsync)
        Directory.CreateDirectory(dataDir);
        var pwFile = PasswordFileOf(dataDir);
        try
        {
            await WritePrivateAsync(pwFile, password, ct);
            await OwnAsync(dataDir, ct);
            await OwnAsync(pwFile, ct);
            await RunAsync(Path.Combine(binDir, "initdb"),
                ["-D", dataDir, "-U", superuser, $"--pwfile={pwFile}", "--auth-host=scram-sha-256", "--auth-local=scram-sha-256",
                 "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions"], ct, killOnCancel: true);
        }
        finally
        {
            File.Delete(pwFile);
        }

        var conf = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["listen_addresses"] = "'127.0.0.1'",
            ["unix_socket_directories"] = "''",
            ["password_encryption"] = "'scram-sha-256'",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string>())
        {
            conf[key] = value;
        }

        await File.AppendAllLinesAsync(Path.Combine(dataDir, "postgresql.conf"),
            ["", "# tenantdb allocator", .. conf.Select(kv => $"{kv.Key} = {kv.Value}")], ct);
    }

    /// <summary>Starts the server detached (it outlives this process) and waits until it accepts connections.</summary>
    public Task StartAsync(string dataDir, CancellationToken ct) =>
        RunAsync(Path.Combine(binDir, "pg_ctl"), ["-D", Path.GetFullPath(dataDir), "-l", Path.GetFullPath(Path.Combine(dataDir, LogFileName)), "-w", "-t", "60", "start"], ct);

    /// <summary>Stops the server: <c>fast</c> (a clean shutdown with a checkpoint) or, for data about to be deleted, <c>immediate</c>.</summary>
    public Task StopAsync(string dataDir, CancellationToken ct, bool immediate = false) =>
        RunAsync(Path.Combine(binDir, "pg_ctl"), ["-D", Path.GetFullPath(dataDir), "-m", immediate ? "immediate" : "fast", "-w", "-t", "120", "stop"], ct);

    public async Task<bool> IsRunningAsync(string dataDir, CancellationToken ct) =>
        IsInitialized(dataDir) && (await RunRawAsync(Path.Combine(binDir, "pg_ctl"), ["-D", Path.GetFullPath(dataDir), "status"], ct)).ExitCode == 0;

    /// <summary>The postmaster's process id, from its pid file, or null when none is recorded.</summary>
    public static int? PostmasterPid(string dataDir)
    {
        var pidFile = Path.Combine(dataDir, "postmaster.pid");
        if (!File.Exists(pidFile))
        {
            return null;
        }

        using var stream = new FileStream(pidFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        return int.TryParse(reader.ReadLine(), out var pid) ? pid : null;
    }

    public static int ReadPort(string dataDir)
    {
        var line = File.ReadLines(Path.Combine(dataDir, "postgresql.conf")).Last(l => l.StartsWith("port = ", StringComparison.Ordinal));
        return int.Parse(line["port = ".Length..], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Writes <paramref name="secret"/> to a new file that is private (0600) from the moment it exists. A leftover of a killed
    /// run is removed first: opening an existing file would keep its old mode.
    /// </summary>
    private static async Task WritePrivateAsync(string path, string secret, CancellationToken ct)
    {
        File.Delete(path);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        await using var stream = new FileStream(path, options);
        await stream.WriteAsync(System.Text.Encoding.UTF8.GetBytes(secret), ct);
    }

    private Task OwnAsync(string path, CancellationToken ct) =>
        Environment.IsPrivilegedProcess ? RunAsync("chown", ["-R", $"{osUser}:{osUser}", path], ct, asServerUser: false) : Task.CompletedTask;

    private async Task RunAsync(string file, IReadOnlyList<string> args, CancellationToken ct, bool asServerUser = true, bool killOnCancel = false)
    {
        var result = await RunRawAsync(file, args, ct, asServerUser, killOnCancel);
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"{Path.GetFileName(file)} {args.LastOrDefault()} failed with exit code {result.ExitCode}: {result.Output.Trim()}");
        }
    }

    /// <param name="killOnCancel">On cancellation, kill the child and its children instead of leaving them running.</param>
    private async Task<(int ExitCode, string Output)> RunRawAsync(string file, IReadOnlyList<string> args, CancellationToken ct, bool asServerUser = true,
        bool killOnCancel = false)
    {
        var start = new ProcessStartInfo { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (asServerUser && Environment.IsPrivilegedProcess)
        {
            // Not this process's working directory: in a clone only root can traverse (mktemp -d, mode 700) the server
            // user cannot enter it, and initdb, pg_ctl and the postmaster each complain (issue 11, fresh machine).
            start.WorkingDirectory = "/";
            start.FileName = "runuser";
            foreach (var a in (string[])["-u", osUser, "--", file])
            {
                start.ArgumentList.Add(a);
            }
        }
        else
        {
            start.FileName = file;
        }

        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {file}.");
        // pg_ctl start leaves the server holding inherited pipes; read until the command itself exits, not until EOF.
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        try
        {
            await process.WaitForExitAsync(ct);
        }
        catch (OperationCanceledException) when (killOnCancel)
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // It exited meanwhile.
            }

            await process.WaitForExitAsync(CancellationToken.None);
            throw;
        }

        var both = Task.WhenAll(stdout, stderr);
        var output = await Task.WhenAny(both, Task.Delay(OutputGrace, ct)) == both ? string.Join("\n", await both) : "";
        return (process.ExitCode, output);
    }
}
