using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Drivers;

namespace TenantDb.Functions.Backups;

/// <summary>A pool server's address and admin login for a client tool; the password reaches the child only as <c>PGPASSWORD</c>.</summary>
public sealed record PgTarget(string Host, int Port, string User, string Password, string Database)
{
    public static PgTarget Of(Pool pool, string adminPassword, string database) => new(pool.Host, pool.Port, pool.AdminUser, adminPassword, database);

    /// <summary>No password here: only what may be shown.</summary>
    public override string ToString() => $"{User}@{Host}:{Port}/{Database}";
}

/// <summary>
/// <c>pg_dump</c> and <c>pg_restore</c> from the PostgreSQL binaries the process driver uses (<see cref="LocalPostgres.FindBinDir"/>: the
/// configured folder, else the newest installed; a client-only install, as in the container image, serves too).
/// Their major version must be at least the server's: an older client cannot dump a newer server faithfully, and the check
/// refuses with a clear error instead of a broken archive.
/// </summary>
public sealed partial class PgClientTools(IOptions<ProvisioningOptions> provisioning)
{
    private readonly Lazy<string> _binDir = new(() => LocalPostgres.FindBinDir(provisioning.Value.Process.BinDir, "pg_dump"));

    private string Tool(string name) => Path.Combine(_binDir.Value, name);

    /// <summary>The major version of the client tools (e.g. 15).</summary>
    public async Task<int> MajorVersionAsync(CancellationToken ct)
    {
        var (code, output, _) = await RunAsync("pg_dump", ["--version"], null, ct);
        var match = VersionPattern().Match(output);
        return code == 0 && match.Success
            ? int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture)
            : throw new InvalidOperationException($"Could not read the version of {Tool("pg_dump")}.");
    }

    /// <summary>Throws <see cref="BackupRefusedException"/> when the tools are older than the server (<c>server_version_num</c>).</summary>
    public async Task EnsureCanServeAsync(int serverVersionNum, CancellationToken ct)
    {
        var client = await MajorVersionAsync(ct);
        var server = serverVersionNum / 10000;
        if (client < server)
        {
            throw new BackupRefusedException("client-too-old",
                $"pg_dump/pg_restore {client} cannot serve a PostgreSQL {server} server; install client tools of version {server} or newer.");
        }
    }

    /// <summary>Starts <c>pg_dump -Fc</c> of the target database; the archive is the process's standard output.</summary>
    /// <param name="compress">False for an archive that is restored at once and never kept (a move): compressing it costs more
    /// time than the pipe saves (measured by the benchmark's lifecycle section: 9.4 s against 2.7 s for 100 MB).</param>
    public Process StartDump(PgTarget target, string? snapshot, bool compress = true)
    {
        // A table locked exclusively by the tenant fails the dump after a minute instead of holding it for ever.
        List<string> args = ["--format=custom", "--no-password", "--lock-wait-timeout=60000", "--host", target.Host, "--port", Port(target), "--username", target.User, "--dbname", target.Database];
        if (!compress)
        {
            args.Add("--compress=0");
        }

        if (snapshot is not null)
        {
            args.Add($"--snapshot={snapshot}");
        }

        return Start("pg_dump", args, target);
    }

    /// <summary>The table of contents of an archive file (<c>pg_restore -l</c>).</summary>
    public async Task<string> ListAsync(string archive, CancellationToken ct)
    {
        var (code, output, error) = await RunAsync("pg_restore", ["--list", archive], null, ct);
        return code == 0 ? output : throw new InvalidOperationException($"pg_restore --list failed ({code}): {Trim(error)}");
    }

    /// <summary>
    /// Restores an archive file into the target database: objects owned by <paramref name="ownerRole"/> (the session takes that
    /// role), the first error stops it.
    /// </summary>
    public async Task RestoreAsync(PgTarget target, string ownerRole, string archive, CancellationToken ct)
    {
        var (code, _, error) = await RunAsync("pg_restore",
            ["--no-password", "--host", target.Host, "--port", Port(target), "--username", target.User, "--dbname", target.Database,
             "--no-owner", $"--role={ownerRole}", "--exit-on-error", archive], target, ct);
        if (code != 0)
        {
            throw new InvalidOperationException($"pg_restore failed ({code}): {Trim(error)}");
        }
    }

    /// <summary>
    /// <c>pg_dump -Fc</c> of <paramref name="source"/> piped straight into <c>pg_restore</c> on <paramref name="target"/> (objects
    /// owned by <paramref name="ownerRole"/>, the first error stops it): no file, no blob. Returns the archive's size in bytes.
    /// </summary>
    public async Task<long> CopyAsync(PgTarget source, PgTarget target, string ownerRole, CancellationToken ct)
    {
        using var dump = StartDump(source, snapshot: null, compress: false);
        using var restore = Start("pg_restore",
            ["--no-password", "--host", target.Host, "--port", Port(target), "--username", target.User, "--dbname", target.Database,
             "--no-owner", $"--role={ownerRole}", "--exit-on-error"], target, stdin: true);
        var dumpErrors = dump.StandardError.ReadToEndAsync(ct);
        var restoreErrors = restore.StandardError.ReadToEndAsync(ct);
        var restoreOutput = restore.StandardOutput.ReadToEndAsync(ct);
        long bytes = 0;
        try
        {
            var buffer = new byte[1 << 20];
            var input = restore.StandardInput.BaseStream;
            int read;
            while ((read = await dump.StandardOutput.BaseStream.ReadAsync(buffer, ct)) > 0)
            {
                await input.WriteAsync(buffer.AsMemory(0, read), ct);
                bytes += read;
            }

            restore.StandardInput.Close();
            await Task.WhenAll(dump.WaitForExitAsync(ct), restore.WaitForExitAsync(ct));
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // pg_restore stopped reading (it failed) or the copy was cancelled: neither child outlives it.
            Kill(dump);
            Kill(restore);
            if (e is OperationCanceledException)
            {
                throw;
            }

            await Task.WhenAll(dump.WaitForExitAsync(CancellationToken.None), restore.WaitForExitAsync(CancellationToken.None));
        }

        await restoreOutput;
        if (restore.ExitCode != 0)
        {
            throw new InvalidOperationException($"pg_restore into the target failed ({restore.ExitCode}): {Trim(await restoreErrors)}");
        }

        if (dump.ExitCode != 0)
        {
            throw new InvalidOperationException($"pg_dump of the source failed ({dump.ExitCode}): {Trim(await dumpErrors)}");
        }

        return bytes;
    }

    /// <summary>A tool's message for an error or event: bounded, never more than its first lines.</summary>
    public static string Trim(string message)
    {
        var text = message.Trim();
        return text.Length <= 600 ? text : text[..600] + "…";
    }

    private static string Port(PgTarget target) => target.Port.ToString(CultureInfo.InvariantCulture);

    private Process Start(string tool, IReadOnlyList<string> args, PgTarget? target, bool stdin = false)
    {
        var start = new ProcessStartInfo(Tool(tool))
        {
            RedirectStandardInput = stdin,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(),
        };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        // The admin password only in the child's environment: never an argument (visible in ps) and never a log line.
        start.Environment.Remove("PGPASSFILE");
        if (target is not null)
        {
            start.Environment["PGPASSWORD"] = target.Password;
            start.Environment["PGCONNECT_TIMEOUT"] = "10";
            start.Environment["PGAPPNAME"] = "tenantdb-backup";
        }

        return Process.Start(start) ?? throw new InvalidOperationException($"Could not start {tool}.");
    }

    private async Task<(int Code, string Output, string Error)> RunAsync(string tool, IReadOnlyList<string> args, PgTarget? target, CancellationToken ct)
    {
        using var process = Start(tool, args, target);
        var output = process.StandardOutput.ReadToEndAsync(ct);
        var error = process.StandardError.ReadToEndAsync(ct);
        try
        {
            await process.WaitForExitAsync(ct);
        }
        catch (OperationCanceledException)
        {
            Kill(process);
            throw;
        }

        return (process.ExitCode, await output, await error);
    }

    /// <summary>Ends a child that is no longer wanted (cancelled, or its reader failed).</summary>
    public static void Kill(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // It exited meanwhile.
        }
    }

    [GeneratedRegex(@"\)\s+(\d+)", RegexOptions.CultureInvariant)]
    private static partial Regex VersionPattern();
}

/// <summary>A backup or restore that cannot be done as asked; <see cref="Type"/> is its problem type.</summary>
public sealed class BackupRefusedException(string type, string message) : Exception(message)
{
    public string Type { get; } = type;
}
