using System.Diagnostics;
using System.Net.Http.Headers;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using TenantDb.Functions.Drivers;
using TenantDb.Functions.Secrets;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// The real allocator as a newcomer runs it: LocalHost as its own process serving the Functions app, a platform
/// PostgreSQL catalog started for the test, Azurite, pool servers by the process driver. Killable and restartable.
/// </summary>
public sealed class AllocatorHost : IAsyncDisposable
{
    public const string MasterKey = "e2e-master-key-0123456789";
    public const string FunctionKey = "e2e-function-key-0123456789";
    public const string SystemKey = "e2e-system-key-0123456789";

    private static readonly string LocalHostDirectory = typeof(AllocatorHost).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "LocalHostDirectory").Value!;

    private readonly string _root;
    private readonly LocalPostgres _postgres = new(LocalPostgres.FindBinDir(null));
    private readonly Dictionary<string, string> _environment = new();
    private Process? _process;

    public int Port { get; } = LocalPostgres.FreeLoopbackPort();
    public Uri BaseAddress => new($"http://127.0.0.1:{Port}");
    public string PoolsRoot => Path.Combine(_root, "pools");
    public string LogFile => Path.Combine(_root, "localhost.log");
    /// <summary>Every request and response body through it is read for passwords (<see cref="Seen"/>).</summary>
    public HttpClient Client { get; }

    /// <summary>The passwords this host's traffic carried; its log is searched for them when the host is disposed.</summary>
    public SeenSecrets Seen { get; } = new();

    private AllocatorHost(string? root)
    {
        _root = root ?? Path.Combine(Path.GetTempPath(), "tenantdb-e2e", Guid.NewGuid().ToString("N")[..10]);
        Client = new HttpClient(new SeenSecrets.Capture(Seen)) { Timeout = TimeSpan.FromSeconds(60) };
    }

    /// <param name="settings">LocalHost's settings (environment variable names) over the defaults.</param>
    /// <param name="root">The folder of its catalog, pools and log; a new one under the temp folder by default.</param>
    public static async Task<AllocatorHost> StartAsync(IDictionary<string, string>? settings = null, string? root = null)
    {
        var host = new AllocatorHost(root);
        try
        {
            await host.InitializeAsync(settings ?? new Dictionary<string, string>());
        }
        catch
        {
            // No caller holds it to dispose: stop what it started so far (the catalog, LocalHost) before the test fails.
            await host.DisposeAsync();
            throw;
        }

        return host;
    }

    private async Task InitializeAsync(IDictionary<string, string> settings)
    {
        await TestEnvironment.EnsureAzuriteAsync();
        Directory.CreateDirectory(PoolsRoot);
        if (Environment.IsPrivilegedProcess)
        {
            using var chown = Process.Start("chown", ["postgres:postgres", _root, PoolsRoot])!;
            await chown.WaitForExitAsync();
        }

        var catalogPassword = PasswordGenerator.Generate(32);
        var catalogPort = LocalPostgres.FreeLoopbackPort();
        var catalogDir = CatalogDataDir;
        await _postgres.InitAsync(catalogDir, catalogPort, "postgres", catalogPassword, null, CancellationToken.None);
        await _postgres.StartAsync(catalogDir, CancellationToken.None);

        _environment["ConnectionStrings__Catalog"] = $"Host=127.0.0.1;Port={catalogPort};Username=postgres;Password={catalogPassword};Database=tenantdb_catalog";
        _environment["Secrets__Key"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        _environment["LocalHost__MasterKey"] = MasterKey;
        _environment["LocalHost__FunctionKeys"] = FunctionKey;
        _environment["LocalHost__SystemKey"] = SystemKey;
        _environment["LocalHost__Port"] = Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        _environment["LocalHost__HubName"] = "E2e" + Guid.NewGuid().ToString("N")[..12];
        // The shared Azurite, or one of the run's own (TENANTDB_TEST_STORAGE, a connection string).
        _environment["AzureWebJobsStorage"] = Environment.GetEnvironmentVariable("TENANTDB_TEST_STORAGE") is { Length: > 0 } storage ? storage : "UseDevelopmentStorage=true";
        // Tenant backups of this host in a container of its own, deleted with it.
        _environment["Backups__Container"] = "e2e-backups-" + Guid.NewGuid().ToString("N")[..12];
        _environment["Provisioning__Driver"] = "process";
        _environment["Provisioning__Process__DataRoot"] = PoolsRoot;
        _environment["Provisioning__ReadyPollInterval"] = "00:00:00.500";
        _environment["Provisioning__FirstRetryInterval"] = "00:00:01";
        _environment["Allocation__WaitPollInterval"] = "00:00:01";
        _environment["Pools__Shared__MaxInstances"] = "5";
        _environment["Pools__MinFreeSlots"] = "0";
        _environment["Sweep__Schedule"] = "0 */5 * * * *";
        _environment["Sweep__CleanupSchedule"] = "0 0 3 * * *";
        // Tenant callbacks (issue 14 item 6) may go to a test's listener on loopback; a test that checks them sets Callbacks__Key.
        _environment["Api__AllowLoopbackCallbacks"] = "true";
        foreach (var (key, value) in settings)
        {
            _environment[key] = value;
        }

        await StartProcessAsync();
    }

    /// <summary>Starts LocalHost and waits until it answers an admin request.</summary>
    public async Task StartProcessAsync()
    {
        var start = new ProcessStartInfo("dotnet", [Path.Combine(LocalHostDirectory, "TenantDb.LocalHost.dll")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = _root,
        };
        foreach (var (key, value) in _environment)
        {
            start.Environment[key] = value;
        }

        _process = Process.Start(start) ?? throw new InvalidOperationException("LocalHost did not start.");
        var log = new StreamWriter(File.Open(LogFile, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (log) { log.WriteLine(e.Data); } } };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (log) { log.WriteLine(e.Data); } } };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var deadline = DateTimeOffset.UtcNow.AddSeconds(90);
        while (true)
        {
            Assert.False(_process.HasExited, $"LocalHost exited with {(_process.HasExited ? _process.ExitCode : 0)}: {Tail()}");
            try
            {
                using var probe = Request(HttpMethod.Get, "/runtime/webhooks/durabletask/instances/none", MasterKey);
                using var response = await Client.SendAsync(probe);
                return; // any answer means Kestrel and the routes are up
            }
            catch (HttpRequestException) when (DateTimeOffset.UtcNow < deadline)
            {
                await Task.Delay(250);
            }
        }
    }

    /// <summary>Every setting (environment variable) the next <see cref="StartProcessAsync"/> passes.</summary>
    public IReadOnlyDictionary<string, string> Settings => _environment;

    /// <summary>The catalog server's data directory (to stop and start it).</summary>
    public string CatalogDataDir => Path.Combine(_root, "catalog");

    /// <summary>The platform catalog's connection string (the allocator's own setting).</summary>
    public string CatalogConnectionString => _environment["ConnectionStrings__Catalog"];

    /// <summary>A setting (environment variable name) as the next <see cref="StartProcessAsync"/> passes it; null removes it.</summary>
    public string? this[string setting]
    {
        get => _environment.GetValueOrDefault(setting);
        set
        {
            if (value is null)
            {
                _environment.Remove(setting);
            }
            else
            {
                _environment[setting] = value;
            }
        }
    }

    /// <summary>SIGKILL: no shutdown, no flush; only what is durable survives.</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
    }

    public HttpRequestMessage Request(HttpMethod method, string path, string? key = FunctionKey, object? body = null)
    {
        var request = new HttpRequestMessage(method, new Uri(BaseAddress, path));
        if (key is not null)
        {
            request.Headers.Add("x-functions-key", key);
        }

        if (body is not null)
        {
            request.Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, new MediaTypeHeaderValue("application/json"));
        }

        return request;
    }

    public async Task<(int Status, JsonElement Body)> SendAsync(HttpMethod method, string path, string? key = FunctionKey, object? body = null)
    {
        using var request = Request(method, path, key, body);
        using var response = await Client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        using var doc = JsonDocument.Parse(string.IsNullOrWhiteSpace(text) ? "null" : text);
        return ((int)response.StatusCode, doc.RootElement.Clone());
    }

    /// <summary>Polls a Durable status URL until the orchestration ends.</summary>
    public async Task<JsonElement> WaitForOrchestrationAsync(string statusUri, TimeSpan timeout)
    {
        var deadline = DateTimeOffset.UtcNow + timeout;
        while (true)
        {
            using var response = await Client.GetAsync(statusUri);
            var text = await response.Content.ReadAsStringAsync();
            if (!string.IsNullOrEmpty(text))
            {
                using var doc = JsonDocument.Parse(text);
                var status = doc.RootElement.GetProperty("runtimeStatus").GetString();
                if (status is "Completed" or "Failed" or "Terminated")
                {
                    return doc.RootElement.Clone();
                }
            }

            Assert.True(DateTimeOffset.UtcNow < deadline, $"orchestration not done within {timeout}: {text}");
            await Task.Delay(500);
        }
    }

    public Task StopServerAsync(string dataDir, bool immediate = false) => _postgres.StopAsync(dataDir, CancellationToken.None, immediate);

    /// <summary>Active shared pools, made one after the other through the admin API (a second request would join a run under way).</summary>
    public async Task ProvisionSharedPoolsAsync(int count)
    {
        var before = await ScalarAsync("SELECT count(*) FROM db_servers WHERE status = 'active'");
        for (var made = 1; made <= count; made++)
        {
            var (status, _) = await SendAsync(HttpMethod.Post, "/api/database/admin/provision-pool", MasterKey);
            Assert.True(status is 200 or 201 or 202, $"provision-pool answered {status}");
            var deadline = DateTimeOffset.UtcNow.AddMinutes(2);
            while (await ScalarAsync("SELECT count(*) FROM db_servers WHERE status = 'active'") < before + made)
            {
                Assert.True(DateTimeOffset.UtcNow < deadline, $"pool {made} did not become active: {Tail()}");
                await Task.Delay(500);
            }
        }
    }

    /// <summary>One number from the catalog.</summary>
    public async Task<long> ScalarAsync(string sql)
    {
        await using var conn = new Npgsql.NpgsqlConnection(CatalogConnectionString + ";Pooling=false");
        await conn.OpenAsync();
        await using var cmd = new Npgsql.NpgsqlCommand(sql, conn);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    public Task StartServerAsync(string dataDir) => _postgres.StartAsync(dataDir, CancellationToken.None);

    /// <summary>The log's last lines for a failure message, every password seen masked: a test prints no password.</summary>
    public string Tail()
    {
        if (!File.Exists(LogFile))
        {
            return "";
        }

        using var reader = new StreamReader(File.Open(LogFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
        var tail = string.Join('\n', reader.ReadToEnd().Split('\n').TakeLast(30));
        return Needles().Aggregate(tail, (text, secret) => text.Replace(secret, "[secret]", StringComparison.Ordinal));
    }

    /// <summary>The app's own warnings and errors (with the lines that follow each, where a stack trace is), passwords masked.</summary>
    public string Warnings(int max = 40)
    {
        if (!File.Exists(LogFile))
        {
            return "";
        }

        using var reader = new StreamReader(File.Open(LogFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
        var lines = reader.ReadToEnd().Split('\n');
        var picked = lines.Select((line, i) => (line, i))
            .Where(l => l.line.Contains(" warn: TenantDb.", StringComparison.Ordinal) || l.line.Contains(" fail: ", StringComparison.Ordinal))
            .Take(max)
            .SelectMany(l => lines.Skip(l.i).Take(1).Concat(lines.Skip(l.i + 1).Take(3).TakeWhile(next => !next.StartsWith(l.line[..2], StringComparison.Ordinal))));
        return Needles().Aggregate(string.Join('\n', picked), (text, secret) => text.Replace(secret, "[secret]", StringComparison.Ordinal));
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync();
        Client.Dispose();
        foreach (var dataDir in Directory.Exists(PoolsRoot) ? Directory.GetDirectories(PoolsRoot) : [])
        {
            await StopQuietlyAsync(dataDir);
        }

        await StopQuietlyAsync(CatalogDataDir);
        await DeleteBackupsQuietlyAsync();
        // Issue 11, secrets: no password of the whole run in any log line. Reported (a throwing dispose would hide the test's
        // own failure); SecretsProofTests asserts it on its own host.
        ProofReport.Write($"proof security: secrets_in_logs={SecretsInLog()}");
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    private async Task DeleteBackupsQuietlyAsync()
    {
        if (!_environment.TryGetValue("Backups__Container", out var container))
        {
            return;
        }

        try
        {
            var options = new Azure.Storage.Blobs.BlobClientOptions { Retry = { MaxRetries = 0, NetworkTimeout = TimeSpan.FromSeconds(5) } };
            await new Azure.Storage.Blobs.BlobServiceClient(_environment["AzureWebJobsStorage"], options).GetBlobContainerClient(container).DeleteIfExistsAsync();
        }
        catch (Azure.RequestFailedException)
        {
            // Azurite stopped by a fault test: its containers are the test run's own.
        }
    }

    /// <summary>
    /// How often the passwords seen (<see cref="Seen"/>), the catalog's password and <paramref name="more"/> occur in the log.
    /// </summary>
    public int SecretsInLog(IEnumerable<string>? more = null)
    {
        if (!File.Exists(LogFile))
        {
            return 0;
        }

        using var reader = new StreamReader(File.Open(LogFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite));
        return SeenSecrets.CountIn(reader.ReadToEnd(), Needles().Concat(more ?? []).Where(p => p.Length >= SeenSecrets.MinimumLength).Distinct());
    }

    /// <summary>The passwords seen and the catalog's.</summary>
    private IEnumerable<string> Needles()
    {
        var catalogPassword = this["ConnectionStrings__Catalog"] is { } catalog ? new Npgsql.NpgsqlConnectionStringBuilder(catalog).Password : null;
        return Seen.Passwords.Append(catalogPassword ?? "").Where(p => p.Length >= SeenSecrets.MinimumLength);
    }

    /// <summary>Stops a server, whatever state a failed test left it in; one that cannot be stopped does not keep the others running.</summary>
    private async Task StopQuietlyAsync(string dataDir)
    {
        try
        {
            if (await _postgres.IsRunningAsync(dataDir, CancellationToken.None))
            {
                await _postgres.StopAsync(dataDir, CancellationToken.None, immediate: true);
            }
        }
        catch (InvalidOperationException)
        {
            // It stopped meanwhile, or pg_ctl failed; infra/test.sh's leftover check reports anything still running.
        }
    }
}
