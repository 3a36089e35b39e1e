using Npgsql;
using TenantDb.Functions.Drivers;

namespace TenantDb.Functions.Tests.Infrastructure;

/// <summary>A real PostgreSQL server started for the test run (initdb + pg_ctl on a free loopback port).</summary>
public sealed class TestServer(string name, string dataDir, int port, string password, LocalPostgres local)
{
    public const string Superuser = "postgres";
    public string Name { get; } = name;
    public string DataDir { get; } = dataDir;
    public int Port { get; } = port;
    public string Password { get; } = password;
    public string LogFile => Path.Combine(DataDir, LocalPostgres.LogFileName);

    public string ConnectionString(string database = "postgres") =>
        new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = Port, Username = Superuser, Password = Password, Database = database, Pooling = false, Timeout = 15 }.ConnectionString;

    public async Task<T?> ScalarAsync<T>(string sql, CancellationToken ct = default)
    {
        await using var conn = new NpgsqlConnection(ConnectionString());
        await conn.OpenAsync(ct);
        await using var cmd = new NpgsqlCommand(sql, conn);
        var value = await cmd.ExecuteScalarAsync(ct);
        return value is null or DBNull ? default : (T)value;
    }

    public Task StopAsync() => local.StopAsync(DataDir, CancellationToken.None);

    public Task StopImmediatelyAsync() => local.StopAsync(DataDir, CancellationToken.None, immediate: true);

    public Task StartAsync() => local.StartAsync(DataDir, CancellationToken.None);

    public Task<bool> IsRunningAsync() => local.IsRunningAsync(DataDir, CancellationToken.None);
}

/// <summary>
/// The servers of the whole run: one platform catalog server and three pool servers (one with log_statement=all).
/// Each test gets its own catalog database, so tests never see each other's pools.
/// </summary>
public sealed class PostgresFixture : IAsyncLifetime
{
    public static readonly string Root = Environment.GetEnvironmentVariable("TENANTDB_TEST_ROOT")
        ?? Path.Combine(Path.GetTempPath(), "tenantdb-tests", $"{Environment.ProcessId}");

    public LocalPostgres Local { get; } = new(LocalPostgres.FindBinDir(Environment.GetEnvironmentVariable("TENANTDB_PG_BINDIR")));
    public TestServer Catalog { get; private set; } = null!;
    public IReadOnlyList<TestServer> Pools { get; private set; } = [];

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(Root);
        var started = await Task.WhenAll(
            StartServerAsync("catalog", new Dictionary<string, string> { ["max_connections"] = "300" }),
            StartServerAsync("pool-a", new Dictionary<string, string> { ["log_statement"] = "'all'" }),
            StartServerAsync("pool-b", null),
            StartServerAsync("pool-c", null));
        Catalog = started[0];
        Pools = started[1..];
    }

    public async Task<TestServer> StartServerAsync(string name, IReadOnlyDictionary<string, string>? settings)
    {
        var dataDir = Path.Combine(Root, name);
        var password = Secrets.PasswordGenerator.Generate(32);
        var port = LocalPostgres.FreeLoopbackPort();
        await Local.InitAsync(dataDir, port, TestServer.Superuser, password, settings, CancellationToken.None);
        await Local.StartAsync(dataDir, CancellationToken.None);
        return new TestServer(name, dataDir, port, password, Local);
    }

    /// <summary>
    /// Stops every server under <see cref="Root"/>, not only the fixture's own: those tests started (<see cref="StartServerAsync"/>,
    /// process-driver pools) and left running when they failed, and those of a half-done <see cref="InitializeAsync"/>.
    /// </summary>
    public async Task DisposeAsync()
    {
        var running = Directory.Exists(Root)
            ? Directory.EnumerateFiles(Root, "postmaster.pid", SearchOption.AllDirectories).Select(Path.GetDirectoryName).OfType<string>().ToList()
            : [];
        foreach (var dataDir in running)
        {
            try
            {
                await Local.StopAsync(dataDir, CancellationToken.None, immediate: true);
            }
            catch (InvalidOperationException)
            {
                // A stale pid file of a server a test killed: nothing runs there.
            }
        }

        if (Directory.Exists(Root))
        {
            Directory.Delete(Root, recursive: true);
        }
    }
}

[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresFixture>
{
    public const string Name = "postgres";
}
