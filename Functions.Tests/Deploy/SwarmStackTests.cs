using System.Diagnostics;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Drivers;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Deploy;

/// <summary>
/// <c>infra/swarm/stack.yml</c>, parsed by the Docker CLI the tests already use (<c>docker stack config</c>, pointed at the
/// private engine): a parse or schema error fails here. Then what the normalised file says is checked against the app:
/// the allocator's environment names only settings the app reads, they pass its start-up validation (the swarm driver in
/// overlay mode), and the network, storage root and placement agree with them. Nothing is deployed.
/// </summary>
[Trait("Category", Tier.Docker)]
public sealed class SwarmStackTests : IDisposable
{
    private const string StackPath = "infra/swarm/stack.yml";

    /// <summary>Host settings the stack sets that no options class binds.</summary>
    private static readonly HashSet<string> HostOnly = new(StringComparer.Ordinal)
    {
        "AzureWebJobsStorage", // the task hub's storage (as a Docker secret: AzureWebJobsStorage_FILE)
        "AzureFunctionsWebHost__hostid", // one host id across container restarts
    };

    private readonly string _folder = Directory.CreateTempSubdirectory("tenantdb-stack-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static (int ExitCode, string Output, string Error) StackConfig(string path)
    {
        var host = Environment.GetEnvironmentVariable("DOCKER_HOST");
        Assert.False(string.IsNullOrEmpty(host),
            "DOCKER_HOST is not set: run the tests through infra/test.sh, which starts the Docker engine (infra/docker/engine.sh start).");
        var start = new ProcessStartInfo("docker") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { "stack", "config", "-c", path })
        {
            start.ArgumentList.Add(arg);
        }

        // The defaults of the file's ${VAR:-default} substitutions, not whatever this shell happens to export.
        foreach (var name in new[] { "TENANTDB_IMAGE", "TENANTDB_STORAGE_ROOT", "TENANTDB_PUBLIC_URL", "TENANTDB_POOL_IMAGE", "TENANTDB_PORT", "TENANTDB_CATALOG_IMAGE" })
        {
            start.Environment.Remove(name);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(60_000), "docker stack config did not finish within 60 s.");
        return (process.ExitCode, output.Result, error.Result);
    }

    private static Dictionary<string, object?> Stack()
    {
        var (code, output, error) = StackConfig(RepoFiles.PathOf(StackPath));
        Assert.True(code == 0, $"docker stack config -c {StackPath} failed ({code}): {error}");
        return YamlSubset.Parse(output);
    }

    [Fact]
    public void StackConfig_Parses_AndABrokenCopyDoesNot()
    {
        var stack = Stack();
        Assert.Equal(["allocator", "catalog"], YamlSubset.At<Dictionary<string, object?>>(stack, "services").Keys.Order());

        // The check can fail: the same file with a key the schema does not know is refused.
        var broken = Path.Combine(_folder, "stack.yml");
        File.WriteAllText(broken, RepoFiles.Read(StackPath).Replace("    image: ${TENANTDB_IMAGE", "    imagee: ${TENANTDB_IMAGE", StringComparison.Ordinal));
        var (code, _, error) = StackConfig(broken);
        Assert.NotEqual(0, code);
        Assert.Contains("imagee", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AllocatorEnvironment_IsTheAppsSettings_AndPassesStartUpValidation()
    {
        var environment = YamlSubset.At<Dictionary<string, object?>>(Stack(), "services", "allocator", "environment");

        var unknown = environment.Keys.Where(k => !HostOnly.Contains(k) && AppSettingKeys.KeyOf(k) is null
            && !(k.EndsWith("_FILE", StringComparison.Ordinal) && (HostOnly.Contains(k[..^5]) || AppSettingKeys.KeyOf(k[..^5]) is not null))).ToList();
        Assert.True(unknown.Count == 0, "stack.yml sets what the app does not read: " + string.Join(", ", unknown));
        Assert.Equal("/run/secrets/tenantdb_storage", environment["AzureWebJobsStorage_FILE"]);
        Assert.Equal("/run/secrets/tenantdb_catalog_connection", environment["ConnectionStrings__Catalog_FILE"]);
        Assert.Equal("/run/secrets/tenantdb_secrets_key", environment["Secrets__Key_FILE"]);

        var settings = environment.Where(e => AppSettingKeys.KeyOf(e.Key) is not null && !e.Key.EndsWith("_FILE", StringComparison.Ordinal))
            .ToDictionary(e => e.Key.Replace("__", ":", StringComparison.Ordinal), e => (string?)e.Value);
        await using var app = OfflineApp.Start(settings);
        app.Get<IStartupValidator>().Validate();
        var swarm = app.Get<IOptions<ProvisioningOptions>>().Value.Swarm;
        Assert.Equal(DriverNames.Swarm, app.Get<IOptions<ProvisioningOptions>>().Value.Driver);
        Assert.Equal(SwarmDriverOptions.OverlayMode, swarm.Mode);
        Assert.True(swarm.SharedStorage);
        Assert.Equal("node.labels.role==database", swarm.PlacementConstraint);
    }

    [Fact]
    public void NetworkStorageAndPlacement_AgreeWithTheDriversSettings()
    {
        var stack = Stack();
        var environment = YamlSubset.At<Dictionary<string, object?>>(stack, "services", "allocator", "environment");
        var storageRoot = Assert.IsType<string>(environment["Provisioning__Swarm__StorageRoot"]);

        // The pools' network: the one the driver attaches pools to, an attachable overlay the allocator is on.
        var pools = YamlSubset.At<Dictionary<string, object?>>(stack, "networks", "pools");
        Assert.Equal(environment["Provisioning__Swarm__Network"], pools["name"]);
        Assert.Equal("overlay", pools["driver"]);
        Assert.Equal("true", pools["attachable"]);
        Assert.Contains("pools", YamlSubset.At<Dictionary<string, object?>>(stack, "services", "allocator", "networks").Keys);
        // The catalog is not on it: only the allocator reaches the catalog.
        Assert.Equal(["catalog"], YamlSubset.At<Dictionary<string, object?>>(stack, "services", "catalog", "networks").Keys);
        Assert.Equal("true", YamlSubset.At<string>(stack, "networks", "catalog", "internal"));

        // The allocator mounts the storage root at the path the pools' bind mounts use (it makes and removes their folders),
        // and the engine's socket (the driver creates services).
        var mounts = YamlSubset.At<List<object?>>(stack, "services", "allocator", "volumes").Cast<Dictionary<string, object?>>().ToList();
        Assert.Contains(mounts, m => (string?)m["type"] == "bind" && (string?)m["source"] == storageRoot && (string?)m["target"] == storageRoot);
        Assert.Contains(mounts, m => (string?)m["target"] == "/var/run/docker.sock");
        Assert.StartsWith("/", storageRoot, StringComparison.Ordinal);

        // PostgreSQL runs on database nodes only; the allocator on a manager (it drives the swarm).
        Assert.Equal(["node.labels.role == database"], YamlSubset.At<List<object?>>(stack, "services", "catalog", "deploy", "placement", "constraints"));
        Assert.Equal(["node.role == manager"], YamlSubset.At<List<object?>>(stack, "services", "allocator", "deploy", "placement", "constraints"));

        // Secrets come from Docker secrets made outside the file.
        var secrets = YamlSubset.At<Dictionary<string, object?>>(stack, "secrets");
        Assert.Equal(["tenantdb_catalog_connection", "tenantdb_catalog_password", "tenantdb_secrets_key", "tenantdb_storage"], secrets.Keys.Order());
        Assert.All(secrets.Values, s => Assert.Equal("true", Assert.IsType<Dictionary<string, object?>>(s)["external"]));
    }
}
