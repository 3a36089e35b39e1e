using System.Globalization;
using Docker.DotNet;
using Microsoft.Extensions.Options;

namespace TenantDb.Functions.Drivers;

/// <summary>The Docker engine behind Docker.DotNet, and what the docker and swarm drivers share: names, labels, limits.</summary>
public sealed class DockerEngine(IOptions<ProvisioningOptions> options) : IDisposable
{
    /// <summary>One call to the engine API (pulls and removals included) before Docker.DotNet gives up on it.</summary>
    private static readonly TimeSpan ApiTimeout = TimeSpan.FromSeconds(100);

    public const string OwnerLabel = "tenantdb.owner";
    public const string PoolLabel = "tenantdb.pool";
    public const string ServerTypeLabel = "tenantdb.server-type";
    public const string PortLabel = "tenantdb.port";
    public const string CatalogLabel = "tenantdb.catalog";
    public const string DataPath = "/var/lib/postgresql/data";
    public const string PgData = DataPath + "/pgdata";

    private readonly Lazy<DockerClient> _client = new(() => Create(options.Value.Docker.Endpoint));

    public DockerClient Client => _client.Value;
    public string Owner => options.Value.Owner;
    public string Image => options.Value.Docker.Image;

    public static string ResourceName(string poolName) => $"tenantdb-{poolName}";
    public static string VolumeName(string poolName) => $"tenantdb-{poolName}-data";

    public Dictionary<string, string> Labels(PoolServerSpec spec, int? port)
    {
        var labels = new Dictionary<string, string>
        {
            [OwnerLabel] = Owner,
            [PoolLabel] = spec.Name,
            [ServerTypeLabel] = spec.ServerType,
            [PortLabel] = port?.ToString(CultureInfo.InvariantCulture) ?? PostgresPorts.Default.ToString(CultureInfo.InvariantCulture),
        };
        if (spec.CatalogId is { } catalogId)
        {
            labels[CatalogLabel] = catalogId.ToString("D");
        }

        return labels;
    }

    /// <summary>The server's pool name and catalog id from its labels.</summary>
    public static OwnedServer? Owned(IDictionary<string, string>? labels, string resourceId) =>
        labels is not null && labels.TryGetValue(PoolLabel, out var pool)
            ? new OwnedServer(pool, resourceId, labels.TryGetValue(CatalogLabel, out var id) && Guid.TryParse(id, out var catalogId) ? catalogId : null)
            : null;

    public List<string> Environment(PoolServerSpec spec) =>
    [
        $"POSTGRES_USER={spec.AdminUser}",
        $"POSTGRES_PASSWORD={spec.AdminPassword}",
        "POSTGRES_DB=postgres",
        $"PGDATA={PgData}",
    ];

    /// <summary>The official image's contract: extra settings as <c>postgres -c key=value</c>.</summary>
    public List<string> Command(int port, string listen)
    {
        var cmd = new List<string> { "postgres", "-c", $"port={port}", "-c", $"listen_addresses={listen}", "-c", "password_encryption=scram-sha-256" };
        foreach (var (key, value) in options.Value.ServerSettings)
        {
            cmd.Add("-c");
            cmd.Add($"{key}={value}");
        }

        return cmd;
    }

    public static long? NanoCpus(decimal? cpu) => cpu is > 0 ? (long)(cpu.Value * 1_000_000_000m) : null;

    /// <summary>Docker-style sizes: <c>512m</c>, <c>4g</c>, plain bytes.</summary>
    public static long? MemoryBytes(string? memory)
    {
        if (string.IsNullOrWhiteSpace(memory))
        {
            return null;
        }

        var text = memory.Trim().ToLowerInvariant();
        var multiplier = text[^1] switch { 'k' => 1L << 10, 'm' => 1L << 20, 'g' => 1L << 30, _ => 1L };
        var digits = multiplier == 1 ? text : text[..^1];
        return long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value > 0
            ? value * multiplier
            : throw new FormatException($"'{memory}' is not a memory size such as 512m or 4g.");
    }

    private static DockerClient Create(string? endpoint)
    {
        endpoint ??= System.Environment.GetEnvironmentVariable("DOCKER_HOST");
        var uri = new Uri(string.IsNullOrWhiteSpace(endpoint) ? "unix:///var/run/docker.sock" : endpoint);
        return new DockerClientConfiguration(uri, defaultTimeout: ApiTimeout).CreateClient();
    }

    public void Dispose()
    {
        if (_client.IsValueCreated)
        {
            _client.Value.Dispose();
        }
    }
}
