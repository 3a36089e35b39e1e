using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using TenantDb.Functions.Drivers;

namespace TenantDb.Bench;

/// <summary>
/// The real allocator over HTTP: LocalHost (its build output, built with the benchmark) as a child process serving the
/// Functions app, with its own catalog database on the benchmark's catalog server, Durable on Azurite, pools made by the
/// process driver under the run's root. The minimum of LocalHost.Tests' AllocatorHost, without the test parts.
/// </summary>
public sealed class LocalHostProcess : IAsyncDisposable
{
    public const string MasterKey = "bench-master-key-0123456789";
    public const string FunctionKey = "bench-function-key-0123456789";

    private static readonly string LocalHostDirectory = typeof(LocalHostProcess).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "LocalHostDirectory").Value!;

    private readonly Process _process;
    private readonly string _logFile;

    private LocalHostProcess(Process process, int port, string logFile, string catalog)
    {
        _process = process;
        _logFile = logFile;
        BaseAddress = new Uri($"http://127.0.0.1:{port}");
        CatalogConnectionString = catalog;
    }

    public Uri BaseAddress { get; }

    /// <summary>Its catalog database (the benchmark's own server).</summary>
    public string CatalogConnectionString { get; }

    /// <summary>One client for every caller (connections are reused as a real caller's are).</summary>
    public HttpClient Client { get; } = new(new SocketsHttpHandler { MaxConnectionsPerServer = 256 }) { Timeout = TimeSpan.FromSeconds(120) };

    /// <param name="name">Names its catalog database, its task hub and its log and pools folders.</param>
    /// <param name="settings">LocalHost settings (environment variable names) over the defaults.</param>
    public static async Task<LocalHostProcess> StartAsync(Servers servers, string name, IDictionary<string, string> settings)
    {
        await EnsureAzuriteAsync();
        var folder = Path.Combine(servers.Root, name);
        var pools = Path.Combine(folder, "pools");
        await servers.MakeDirectoryAsync(folder);
        await servers.MakeDirectoryAsync(pools);
        var catalog = await servers.CreateCatalogDatabaseAsync("tenantdb_" + name.Replace('-', '_'));
        var port = LocalPostgres.FreeLoopbackPort();
        var environment = new Dictionary<string, string>
        {
            ["ConnectionStrings__Catalog"] = catalog,
            ["Secrets__Key"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
            ["LocalHost__MasterKey"] = MasterKey,
            ["LocalHost__FunctionKeys"] = FunctionKey,
            ["LocalHost__SystemKey"] = "bench-system-key-0123456789",
            ["LocalHost__Port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["LocalHost__HubName"] = "Bench" + Guid.NewGuid().ToString("N")[..12],
            ["AzureWebJobsStorage"] = "UseDevelopmentStorage=true",
            ["Provisioning__Driver"] = "process",
            ["Provisioning__Process__DataRoot"] = pools,
            ["Provisioning__ReadyPollInterval"] = "00:00:00.250",
            ["Allocation__WaitPollInterval"] = "00:00:00.500",
            ["Pools__MinFreeSlots"] = "0",
            ["Sweep__Schedule"] = "0 0 */6 * * *",
            ["Sweep__CleanupSchedule"] = "0 0 3 * * *",
            ["Logging__LogLevel__Default"] = Environment.GetEnvironmentVariable("BENCH_LOCALHOST_LOG_LEVEL") ?? "Warning",
        };
        foreach (var (key, value) in settings)
        {
            environment[key] = value;
        }

        var start = new ProcessStartInfo("dotnet", [Path.Combine(LocalHostDirectory, "TenantDb.LocalHost.dll")])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = folder,
        };
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var logFile = Path.Combine(folder, "localhost.log");
        var process = Process.Start(start) ?? throw new InvalidOperationException("LocalHost did not start.");
        var log = new StreamWriter(File.Open(logFile, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (log) { log.WriteLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (log) { log.WriteLine(e.Data); } } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var host = new LocalHostProcess(process, port, logFile, catalog);
        try
        {
            var deadline = DateTimeOffset.UtcNow.AddSeconds(120);
            while (true)
            {
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"LocalHost exited with {process.ExitCode}; its log: {logFile}");
                }

                try
                {
                    var (status, _) = await host.SendAsync(HttpMethod.Get, "/api/database/admin/stats", MasterKey);
                    if (status == 200)
                    {
                        return host;
                    }
                }
                catch (HttpRequestException) when (DateTimeOffset.UtcNow < deadline)
                {
                }

                if (DateTimeOffset.UtcNow > deadline)
                {
                    throw new TimeoutException($"LocalHost did not answer within 2 minutes; its log: {logFile}");
                }

                await Task.Delay(250);
            }
        }
        catch
        {
            await host.DisposeAsync();
            throw;
        }
    }

    public async Task<(int Status, JsonElement Body)> SendAsync(HttpMethod method, string path, string? key = FunctionKey, object? body = null)
    {
        using var request = new HttpRequestMessage(method, new Uri(BaseAddress, path));
        if (key is not null)
        {
            request.Headers.Add("x-functions-key", key);
        }

        if (body is not null)
        {
            request.Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, new MediaTypeHeaderValue("application/json"));
        }

        using var response = await Client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        using var document = JsonDocument.Parse(string.IsNullOrWhiteSpace(text) ? "null" : text);
        return ((int)response.StatusCode, document.RootElement.Clone());
    }

    /// <summary>POST database/allocate for a new instance of the standard tier.</summary>
    public Task<(int Status, JsonElement Body)> AllocateAsync(Guid instanceId) => SendAsync(HttpMethod.Post, "/api/database/allocate", FunctionKey,
        new { instance_id = instanceId, customer_id = Guid.NewGuid(), plan_tier = "standard" });

    /// <summary>
    /// A tenant as the platform's instance-service gets one: allocate (again every <paramref name="poll"/> while it answers 202 or
    /// 503), then claim until the password comes. Returns the first answer's status and the time until the claim's 200.
    /// </summary>
    public async Task<(int FirstStatus, TimeSpan UntilClaimable)> AllocateUntilClaimableAsync(Guid instanceId, TimeSpan poll, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        var customer = Guid.NewGuid();
        var first = 0;
        while (true)
        {
            var (status, _) = await SendAsync(HttpMethod.Post, "/api/database/allocate", FunctionKey,
                new { instance_id = instanceId, customer_id = customer, plan_tier = "standard" });
            first = first == 0 ? status : first;
            if (status == 200)
            {
                break;
            }

            if (status is not (202 or 503) || watch.Elapsed > timeout)
            {
                throw new InvalidOperationException($"allocate answered {status} after {watch.Elapsed.TotalSeconds:0} s; log: {_logFile}");
            }

            await Task.Delay(poll);
        }

        while (true)
        {
            var (status, _) = await SendAsync(HttpMethod.Post, $"/api/database/credentials/{instanceId:D}/claim", FunctionKey);
            if (status == 200)
            {
                return (first, watch.Elapsed);
            }

            if (status is not (503 or 404) || watch.Elapsed > timeout)
            {
                throw new InvalidOperationException($"claim answered {status} after {watch.Elapsed.TotalSeconds:0} s; log: {_logFile}");
            }

            await Task.Delay(poll);
        }
    }

    /// <summary>Provisions one shared pool through the admin API and waits until it is active; the time it took.</summary>
    public async Task<(long PoolId, TimeSpan Took)> ProvisionPoolAsync(TimeSpan poll)
    {
        var watch = Stopwatch.StartNew();
        var (status, body) = await SendAsync(HttpMethod.Post, "/api/database/admin/provision-pool", MasterKey);
        if (status != 202)
        {
            throw new InvalidOperationException($"provision-pool answered {status}: {body}");
        }

        var id = body.GetProperty("pool_id").GetInt64();
        while (true)
        {
            var (poolStatus, pool) = await SendAsync(HttpMethod.Get, $"/api/database/admin/pools/{id}", MasterKey);
            var state = poolStatus == 200 ? pool.GetProperty("pool").GetProperty("status").GetString() : null;
            if (state is "active" or "full")
            {
                return (id, watch.Elapsed);
            }

            if (state is "error" or "deleted" or "deleting" || watch.Elapsed > TimeSpan.FromMinutes(3))
            {
                throw new InvalidOperationException($"pool {id} is {state} after {watch.Elapsed.TotalSeconds:0} s; log: {_logFile}");
            }

            await Task.Delay(poll);
        }
    }

    /// <summary>The pools as the admin API lists them (first page of 200).</summary>
    public async Task<JsonElement[]> PoolsAsync()
    {
        var (status, body) = await SendAsync(HttpMethod.Get, "/api/database/admin/pools?page_size=200", MasterKey);
        return status == 200 ? [.. body.GetProperty("pools").EnumerateArray()] : throw new InvalidOperationException($"pools answered {status}");
    }

    /// <summary>Registers an existing server (the benchmark's pool server) as a shared pool.</summary>
    public async Task<long> RegisterAsync(BenchServer server, string name, int maxInstances)
    {
        var (status, body) = await SendAsync(HttpMethod.Post, "/api/database/admin/pools/register", MasterKey, new
        {
            name, host = "127.0.0.1", port = server.Port, admin_user = "postgres", admin_password = server.Password,
            max_instances = maxInstances, server_type = "shared", close_public_databases = true,
        });
        return status == 201 ? body.GetProperty("id").GetInt64() : throw new InvalidOperationException($"register answered {status}: {body}");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        Client.Dispose();
        // BENCH_LOG_DIR keeps each LocalHost's log (the run's root, with it, is deleted at the end).
        if (Environment.GetEnvironmentVariable("BENCH_LOG_DIR") is { Length: > 0 } logs && File.Exists(_logFile))
        {
            Directory.CreateDirectory(logs);
            File.Copy(_logFile, Path.Combine(logs, Path.GetFileName(Path.GetDirectoryName(_logFile)!) + ".log"), overwrite: true);
        }
    }

    /// <summary>Azurite on 127.0.0.1:10000-10002, started by infra/azurite.sh (and left running, as the tests do) when it is not.</summary>
    private static async Task EnsureAzuriteAsync()
    {
        if (await IsListeningAsync(10001) && await IsListeningAsync(10002))
        {
            return;
        }

        var root = RepositoryRoot();
        var start = new ProcessStartInfo(Path.Combine(root, "infra", "azurite.sh")) { ArgumentList = { "start", Path.Combine(root, ".local", "azurite-data") } };
        using var process = Process.Start(start) ?? throw new InvalidOperationException("infra/azurite.sh did not start.");
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException("infra/azurite.sh start failed: the HTTP sections need Azurite on 127.0.0.1:10000-10002.");
        }
    }

    private static async Task<bool> IsListeningAsync(int port)
    {
        using var client = new TcpClient();
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await client.ConnectAsync("127.0.0.1", port, timeout.Token);
            return true;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return false;
        }
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Functions.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("The repository root (Functions.sln) was not found above the benchmark's binaries.");
    }
}
