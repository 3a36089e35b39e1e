using System.ComponentModel.DataAnnotations;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Drivers;

public sealed class ProvisioningOptions : IValidatableObject
{
    public const string Section = "Provisioning";

    /// <summary><c>process</c> (the embedded default), <c>docker</c>, <c>swarm</c> or <c>registered</c>.</summary>
    [RegularExpression(DriverNames.Pattern)]
    public string Driver { get; set; } = DriverNames.Process;

    /// <summary>Marks every server this allocator owns (Docker label value; process: the data root).</summary>
    [RegularExpression("^[a-z0-9][a-z0-9-]{0,62}$")]
    public string Owner { get; set; } = "tenantdb-allocator";

    /// <summary>The superuser the allocator creates on a server it provisions.</summary>
    [RegularExpression("^[a-z_][a-z0-9_]{0,62}$")]
    public string AdminUser { get; set; } = "tenantdb_admin";

    /// <summary>Extra <c>postgres -c key=value</c> settings for every provisioned server.</summary>
    public Dictionary<string, string> ServerSettings { get; set; } = new(StringComparer.Ordinal)
    {
        ["max_connections"] = "200",
    };

    /// <summary>Attempts of the create step in the provisioning orchestration (exponential backoff between them).</summary>
    [Range(1, 20)]
    public int CreateAttempts { get; set; } = 4;

    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]

    public TimeSpan FirstRetryInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Most servers the catalog may hold (every pool not deleted, registered ones included).</summary>
    [Range(1, 100_000)]
    public int MaxServers { get; set; } = 100;

    /// <summary>
    /// Shared pools in error after which no new shared pool is provisioned (by a waiting allocation, the headroom rule or an
    /// operator) until they are retired: a driver that always fails makes this many failed pools, not one per poll.
    /// </summary>
    [Range(1, 100)]
    public int MaxSharedFailedPools { get; set; } = 3;

    /// <summary>Failed dedicated servers (pools in error) of one instance after which no new one is tried for it.</summary>
    [Range(1, 100)]
    public int MaxDedicatedAttempts { get; set; } = 3;

    /// <summary>How often the orchestration polls a new server's health, on a durable timer.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:05:00")]
    public TimeSpan ReadyPollInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Connect and query timeout of one probe a driver makes of a server it created or inspects.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:02:00")]
    public TimeSpan ProbeTimeout { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>How long a new server may take to answer before provisioning fails.</summary>
    [Range(typeof(TimeSpan), "00:00:05", "02:00:00")]
    public TimeSpan ReadyTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>A <c>postgres -c</c> setting this allocator may pass: a setting name, and one line of printable characters.</summary>
    public static bool IsServerSetting(string name, string? value) =>
        System.Text.RegularExpressions.Regex.IsMatch(name, "^[a-z_][a-z0-9_.]{0,62}$")
        && value is { Length: > 0 and <= 1024 } && !string.IsNullOrWhiteSpace(value) && !value.Any(char.IsControl);

    /// <summary>Each bad <see cref="ServerSettings"/> entry, named by its key.</summary>
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext) =>
        ServerSettings.Where(s => !IsServerSetting(s.Key, s.Value)).Select(s => new ValidationResult(
            "must be a PostgreSQL setting name (lower-case letters, digits, '_' and '.') with a value of one line of printable characters.",
            [$"{nameof(ServerSettings)}:{s.Key}"]));

    public ProcessDriverOptions Process { get; set; } = new();
    public DockerDriverOptions Docker { get; set; } = new();
    public SwarmDriverOptions Swarm { get; set; } = new();
}

public sealed class ProcessDriverOptions
{
    /// <summary>PostgreSQL server binaries; empty: the newest under /usr/lib/postgresql.</summary>
    public string? BinDir { get; set; }

    /// <summary>One folder per pool server below this (an absolute path).</summary>
    [Required, RegularExpression("^/.*", ErrorMessage = "DataRoot must be an absolute path.")]
    public string DataRoot { get; set; } = "/var/lib/tenantdb/pools";
}

public sealed class DockerDriverOptions
{
    /// <summary>Docker engine endpoint; empty: DOCKER_HOST, else the default socket.</summary>
    public string? Endpoint { get; set; }

    /// <summary>PostgreSQL image honouring the official <c>postgres</c> image contract.</summary>
    [Required, RegularExpression("^[a-z0-9][a-z0-9._/:@-]{0,254}$", ErrorMessage = "Image must be an image reference (registry/name:tag or @digest).")]
    public string Image { get; set; } = "postgres:16-alpine";

    /// <summary><c>host</c>: the server listens on a free loopback port of the host; <c>bridge</c>: 5432 published on 127.0.0.1.</summary>
    [RegularExpression("^(host|bridge)$")]
    public string NetworkMode { get; set; } = "bridge";
}

public sealed class SwarmDriverOptions : IValidatableObject
{
    /// <summary>The tests' mode: host networking, a port chosen on the allocator's machine, a named volume unless a storage root is set.</summary>
    public const string HostMode = "host";

    /// <summary>
    /// Production: services on an overlay network shared with the app, reached as service-name:5432, no published port,
    /// data bind-mounted under <see cref="StorageRoot"/>.
    /// </summary>
    public const string OverlayMode = "overlay";

    /// <summary><c>host</c> (the default, what the tests run) or <c>overlay</c> (production: see <see cref="OverlayMode"/>).</summary>
    [Required, RegularExpression("^(host|overlay)$", ErrorMessage = "Mode must be host or overlay.")]
    public string Mode { get; set; } = HostMode;

    /// <summary>Placement constraint of every pool service.</summary>
    [Required]
    public string PlacementConstraint { get; set; } = "node.labels.role==database";

    /// <summary>Network the services join: <c>host</c> in host mode; in overlay mode the overlay the app is on too (reached as service-name:5432).</summary>
    [Required, RegularExpression("^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", ErrorMessage = "Network must be a Docker network name.")]
    public string Network { get; set; } = "host";

    /// <summary>Host the allocator uses to reach a host-networked service (the node's address).</summary>
    [Required]
    public string HostNetworkAddress { get; set; } = "127.0.0.1";

    /// <summary>
    /// Data root on the nodes (the platform's CephFS path), mounted at the same path where the allocator runs (it makes and
    /// removes each pool's folder); empty: a named volume on the node. Required in overlay mode.
    /// </summary>
    [RegularExpression("^/.*", ErrorMessage = "StorageRoot must be an absolute path.")]
    public string? StorageRoot { get; set; }

    /// <summary>True when <see cref="StorageRoot"/> is shared by all nodes; otherwise a service is pinned to the node it first ran on.</summary>
    public bool SharedStorage { get; set; }

    /// <summary>Overlay mode needs an overlay network and a storage root; host mode, host networking.</summary>
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Mode == OverlayMode && Network == "host")
        {
            yield return new ValidationResult("must name the overlay network the app and the pools share when Mode is overlay.", [nameof(Network)]);
        }

        if (Mode == OverlayMode && string.IsNullOrWhiteSpace(StorageRoot))
        {
            yield return new ValidationResult("must be set when Mode is overlay: a rescheduled pool finds its data only there.", [nameof(StorageRoot)]);
        }

        if (Mode == HostMode && Network != "host")
        {
            yield return new ValidationResult("must be host when Mode is host (set Mode to overlay to use an overlay network).", [nameof(Network)]);
        }
    }
}
