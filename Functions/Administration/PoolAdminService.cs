using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Npgsql;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Drivers;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Provisioning;

namespace TenantDb.Functions.Administration;

/// <summary>The answer of an administrative use case: its value, or why not (each maps to one HTTP problem).</summary>
public abstract record AdminOutcome<T>
{
    public sealed record Done(T Value) : AdminOutcome<T>;
    public sealed record Invalid(IReadOnlyDictionary<string, string[]> Errors) : AdminOutcome<T>;
    public sealed record NotFound(string Type, string Detail) : AdminOutcome<T>;
    public sealed record Conflict(string Type, string Detail) : AdminOutcome<T>;
    public sealed record Unprocessable(string Type, string Detail, IDictionary<string, object?>? Extensions = null) : AdminOutcome<T>;
    public sealed record Unavailable(string Type, string Detail) : AdminOutcome<T>;
}

/// <summary>A pool as operators see it: never its admin password, clear or encrypted.</summary>
public sealed record PoolView(
    long Id, string Name, string? Host, int? Port, ServerType ServerType, PoolStatus Status, HealthStatus HealthStatus,
    int CurrentInstances, int MaxInstances, double UtilizationPercent, int Priority, string Driver, string? DriverResourceId,
    string? PostgresVersion, decimal? CpuLimit, string? MemoryLimit, string? StoragePath, string? ProvisioningInstanceId,
    Guid? DedicatedToCustomerId, Guid? DedicatedToInstanceId, string AdminUser, DateTimeOffset? LastHealthCheck, int? LastResponseMs,
    int? DatabaseCount, int ConsecutiveHealthFailures, string? LastError, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt)
{
    public static PoolView From(Pool p) => new(
        p.Id, p.Name, p.Host.Length > 0 ? p.Host : null, p.Port > 0 ? p.Port : null, p.ServerType, p.Status, p.HealthStatus,
        p.CurrentInstances, p.MaxInstances, PoolAdminService.Percent(p.CurrentInstances, p.MaxInstances), p.Priority, p.Driver,
        p.DriverResourceId, p.PostgresVersion, p.CpuLimit, p.MemoryLimit, p.StoragePath, p.ProvisioningInstanceId, p.DedicatedToCustomerId,
        p.DedicatedToInstanceId, p.AdminUser, p.LastHealthCheck, p.LastResponseMs, p.DatabaseCount, p.ConsecutiveHealthFailures,
        p.LastError, p.CreatedAt, p.UpdatedAt);
}

public sealed record PoolPage(IReadOnlyList<PoolView> Pools, long Total, int Page, int PageSize, long TotalPages);

public sealed record PoolEventView(long Id, string Event, string? FromStatus, string? ToStatus, string? Reason, string Actor, Guid? InstanceId, DateTimeOffset At)
{
    public static PoolEventView From(PoolEvent e) => new(e.Id, e.Event, e.FromStatus, e.ToStatus, e.Reason, e.Actor, e.InstanceId, e.At);
}

/// <summary>One pool with its tenant rows counted by status (live = creating + ready + released) and its latest events.</summary>
public sealed record PoolDetail(PoolView Pool, int LiveTenants, IReadOnlyDictionary<string, int> TenantCounts, IReadOnlyList<PoolEventView> RecentEvents);

public sealed record ServerTypeStats(int Pools, int Capacity, int Used, int Available, double UtilizationPercent);

/// <summary>
/// The platform in numbers (retired pools left out): capacity = slots of all pools, used = slots taken, available = free
/// slots in placement (active, healthy or unknown), tenants = live tenant databases.
/// </summary>
public sealed record PoolStats(
    int TotalPools, int TotalTenants, int TotalCapacity, int UsedCapacity, int AvailableCapacity, double UtilizationPercent,
    IReadOnlyDictionary<string, int> PoolsByStatus, IReadOnlyDictionary<string, int> PoolsByHealth,
    IReadOnlyDictionary<string, int> TenantsByStatus, IReadOnlyDictionary<string, ServerTypeStats> ByServerType);

/// <summary>An existing server to register as a pool. A class, not a record: its password must never print.</summary>
public sealed class RegisterPoolRequest
{
    public string? Name { get; init; }
    public string? Host { get; init; }
    public int? Port { get; init; }
    public string? AdminUser { get; init; }
    public string? AdminPassword { get; init; }
    public int? MaxInstances { get; init; }
    public int? Priority { get; init; }
    public string? ServerType { get; init; }

    /// <summary>Let the allocator revoke CONNECT from PUBLIC on the server's other databases (else their being open refuses the registration).</summary>
    public bool? ClosePublicDatabases { get; init; }
}

/// <summary>
/// Operators' use cases on pools: list, detail, stats, drain, activate, retire (deprovision an empty pool), register an
/// existing server.
/// </summary>
public sealed partial class PoolAdminService(
    PoolStore pools,
    HealthService health,
    PoolProvisioners provisioners,
    PoolAdminPasswords passwords,
    PoolDeprovisioner deprovisioner,
    RegisteredServerAudit audit,
    ILogger<PoolAdminService> logger)
{
    public const string Actor = Actors.Operator;
    public const int DefaultPageSize = 50;
    public const int MaxPageSize = 200;
    public const int RecentEventCount = 20;
    private const int MaxPage = 1_000_000;
    private const int MaxPasswordLength = 1024;
    private const int MaxHostLength = 253;
    private const int MaxInstancesLimit = 10_000;
    private const int MaxPriority = 1_000_000;
    private static readonly PoolStatus[] Drainable = [PoolStatus.Active, PoolStatus.Full];
    private static readonly PoolStatus[] Activatable = [PoolStatus.Draining, PoolStatus.Error];
    private static readonly PoolStatus[] Retirable = [PoolStatus.Active, PoolStatus.Full, PoolStatus.Draining, PoolStatus.Error, PoolStatus.Deleting];

    public static double Percent(long part, long whole) => whole <= 0 ? 0 : Math.Round(100.0 * part / whole, 1);

    /// <summary>Parses the raw query values: unknown words and bad numbers are errors, empty values mean "not given".</summary>
    public async Task<AdminOutcome<PoolPage>> ListAsync(string? status, string? serverType, string? healthStatus, string? page, string? pageSize,
        CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        var statusFilter = Filter<PoolStatus>("status", status, errors);
        var typeFilter = Filter<ServerType>("server_type", serverType, errors);
        var healthFilter = Filter<HealthStatus>("health_status", healthStatus, errors);
        var pageNumber = Number("page", page, 1, 1, MaxPage, errors);
        var size = Number("page_size", pageSize, DefaultPageSize, 1, MaxPageSize, errors);
        if (errors.Count > 0)
        {
            return new AdminOutcome<PoolPage>.Invalid(errors);
        }

        var (found, total) = await pools.ListPageAsync(statusFilter, typeFilter, healthFilter, (pageNumber - 1) * size, size, ct);
        return new AdminOutcome<PoolPage>.Done(new PoolPage(found.Select(PoolView.From).ToList(), total, pageNumber, size, (total + size - 1) / size));
    }

    public async Task<AdminOutcome<PoolDetail>> GetAsync(long id, CancellationToken ct)
    {
        if (await pools.GetAsync(id, ct) is not { } pool)
        {
            return NotFound<PoolDetail>(id);
        }

        var counts = await pools.TenantCountsAsync(id, ct);
        var events = await pools.RecentEventsAsync(id, RecentEventCount, ct);
        var byStatus = Enum.GetValues<TenantDatabaseStatus>().ToDictionary(s => s.ToSql(), s => counts.GetValueOrDefault(s));
        var live = counts.GetValueOrDefault(TenantDatabaseStatus.Creating) + counts.GetValueOrDefault(TenantDatabaseStatus.Ready)
            + counts.GetValueOrDefault(TenantDatabaseStatus.Released);
        return new AdminOutcome<PoolDetail>.Done(new PoolDetail(PoolView.From(pool), live, byStatus, events.Select(PoolEventView.From).ToList()));
    }

    public async Task<PoolStats> StatsAsync(CancellationToken ct)
    {
        var counts = await pools.CountAsync(ct);
        var groups = counts.Pools;
        var capacity = groups.Sum(g => g.Capacity);
        var used = groups.Sum(g => g.Used);
        var tenants = Enum.GetValues<TenantDatabaseStatus>().ToDictionary(s => s.ToSql(), s => counts.Tenants.GetValueOrDefault(s));
        return new PoolStats(
            TotalPools: groups.Sum(g => g.Pools),
            TotalTenants: tenants["creating"] + tenants["ready"] + tenants["released"],
            TotalCapacity: capacity,
            UsedCapacity: used,
            AvailableCapacity: groups.Sum(g => g.Available),
            UtilizationPercent: Percent(used, capacity),
            PoolsByStatus: Enum.GetValues<PoolStatus>().Where(s => s != PoolStatus.Deleted)
                .ToDictionary(s => s.ToSql(), s => groups.Where(g => g.Status == s).Sum(g => g.Pools)),
            PoolsByHealth: Enum.GetValues<HealthStatus>().ToDictionary(h => h.ToSql(), h => groups.Where(g => g.Health == h).Sum(g => g.Pools)),
            TenantsByStatus: tenants,
            ByServerType: Enum.GetValues<ServerType>().ToDictionary(t => t.ToSql(), t =>
            {
                var of = groups.Where(g => g.ServerType == t).ToList();
                return new ServerTypeStats(of.Sum(g => g.Pools), of.Sum(g => g.Capacity), of.Sum(g => g.Used), of.Sum(g => g.Available),
                    Percent(of.Sum(g => g.Used), of.Sum(g => g.Capacity)));
            }));
    }

    /// <summary>Out of placement (no new tenants); existing tenants stay. Idempotent.</summary>
    public async Task<AdminOutcome<PoolView>> DrainAsync(long id, CancellationToken ct)
    {
        if (await pools.TransitionAsync(id, Drainable, PoolStatus.Draining, "drained by an operator", Actor, ct) is { } drained)
        {
            LogDrained(drained.Name);
            return new AdminOutcome<PoolView>.Done(PoolView.From(drained));
        }

        return await pools.GetAsync(id, ct) switch
        {
            null => NotFound<PoolView>(id),
            { Status: PoolStatus.Draining } pool => new AdminOutcome<PoolView>.Done(PoolView.From(pool)),
            var pool => new AdminOutcome<PoolView>.Conflict("pool-status", $"Pool {pool.Name} is {pool.Status.ToSql()}; only an active or full pool can be drained."),
        };
    }

    /// <summary>Back into placement: active, or full when at capacity, only when its server answers a probe now. Idempotent.</summary>
    public async Task<AdminOutcome<PoolView>> ActivateAsync(long id, CancellationToken ct)
    {
        // A pool in error (or drained) may sit on a dead server: it takes tenants again only once a real probe answers.
        if (await pools.GetAsync(id, ct) is { Host.Length: > 0 } candidate && Activatable.Contains(candidate.Status)
            && await health.CheckAsync(id, ct) is AdminOutcome<PoolHealthReport>.Done { Value: { Reachable: false } probe })
        {
            LogActivationRefused(candidate.Name, probe.Error);
            return new AdminOutcome<PoolView>.Conflict("pool-unreachable",
                $"Pool {candidate.Name} did not answer its health probe ({probe.Error}); it stays {candidate.Status.ToSql()}.");
        }

        if (await pools.ActivateAsync(id, Activatable, "activated by an operator", Actor, ct) is { } activated)
        {
            LogActivated(activated.Name, activated.Status.ToSql());
            return new AdminOutcome<PoolView>.Done(PoolView.From(activated));
        }

        return await pools.GetAsync(id, ct) switch
        {
            null => NotFound<PoolView>(id),
            { Status: PoolStatus.Active or PoolStatus.Full } pool => new AdminOutcome<PoolView>.Done(PoolView.From(pool)),
            { Status: PoolStatus.Draining or PoolStatus.Error } pool => new AdminOutcome<PoolView>.Conflict("pool-no-endpoint",
                $"Pool {pool.Name} has no server endpoint; it cannot take tenants."),
            var pool => new AdminOutcome<PoolView>.Conflict("pool-status", $"Pool {pool.Name} is {pool.Status.ToSql()}; only a draining or error pool can be activated."),
        };
    }

    /// <summary>
    /// Deprovisions a pool that hosts no live tenant database: deleting → the driver removes the server → deleted.
    /// A pool with tenants is refused. Idempotent; a pool left in deleting by a failed driver call is finished by a retry.
    /// </summary>
    public async Task<AdminOutcome<PoolView>> RetireAsync(long id, CancellationToken ct)
    {
        switch (await pools.BeginRetireAsync(id, Retirable, "retired by an operator", Actor, ct))
        {
            case RetireGate.NotFound:
                return NotFound<PoolView>(id);
            case RetireGate.HasTenants tenants:
                return new AdminOutcome<PoolView>.Conflict("pool-has-tenants",
                    $"The pool hosts {tenants.LiveTenants} live tenant databases (creating, ready or released); release and purge them first.");
            case RetireGate.InStatus { Status: PoolStatus.Deleted }:
                return new AdminOutcome<PoolView>.Done(PoolView.From((await pools.GetAsync(id, ct))!));
            case RetireGate.InStatus other:
                return new AdminOutcome<PoolView>.Conflict("pool-status", $"The pool is {other.Status.ToSql()}; it cannot be retired now.");
            case RetireGate.Started started:
                return await deprovisioner.DeprovisionAsync(started.Pool, Actor, ct) is { } deleted
                    ? new AdminOutcome<PoolView>.Done(PoolView.From(deleted))
                    : new AdminOutcome<PoolView>.Unavailable("retire-failed",
                        $"Removing the server of pool {started.Pool.Name} failed; the pool stays 'deleting'. Retry the request.");
            default:
                throw new InvalidOperationException("Unknown retire gate.");
        }
    }

    /// <summary>
    /// Registers an existing server: it must answer with the given admin credentials (through the <c>registered</c>
    /// driver) and pass <see cref="RegisteredServerAudit"/> (rights, not the catalog's server, no other database open to
    /// every role); the password is stored encrypted; the pool starts active and is health-checked at once.
    /// </summary>
    public async Task<AdminOutcome<PoolView>> RegisterAsync(RegisterPoolRequest request, CancellationToken ct)
    {
        if (Validate(request) is { Count: > 0 } errors)
        {
            return new AdminOutcome<PoolView>.Invalid(errors);
        }

        var name = request.Name!;
        if (await pools.GetByNameAsync(name, ct) is not null)
        {
            return new AdminOutcome<PoolView>.Conflict("pool-name-taken", $"A pool named {name} already exists (retired pools keep their names).");
        }

        var type = Vocabulary.Parse<ServerType>(request.ServerType ?? "shared");
        var check = await audit.CheckAsync(request.Host!, request.Port!.Value, request.AdminUser!, request.AdminPassword!,
            request.ClosePublicDatabases ?? false, ct);
        if (check is RegistrationCheck.Refused refused)
        {
            LogRegistrationRefused(request.Host!, request.Port!.Value, refused.Type);
            return new AdminOutcome<PoolView>.Unprocessable(refused.Type, refused.Detail,
                refused.Databases is { } databases ? new Dictionary<string, object?> { ["databases"] = databases } : null);
        }

        ServerEndpoint endpoint;
        try
        {
            endpoint = await provisioners.For(DriverNames.Registered).CreateAsync(
                new PoolServerSpec(name, type.ToSql(), request.AdminUser!, request.AdminPassword!, null, null, request.Host, request.Port), ct);
        }
        catch (ServerUnreachableException e)
        {
            return new AdminOutcome<PoolView>.Unprocessable("server-unreachable", e.Message);
        }

        Pool pool;
        try
        {
            pool = await pools.InsertAsync(new NewPool
            {
                Name = name,
                Host = endpoint.Host,
                Port = endpoint.Port,
                ServerType = type,
                Status = PoolStatus.Active,
                MaxInstances = request.MaxInstances!.Value,
                Priority = request.Priority ?? 100,
                Driver = DriverNames.Registered,
                DriverResourceId = endpoint.ResourceId,
                AdminUser = request.AdminUser!,
                AdminPasswordEncrypted = passwords.Protect(request.AdminPassword!, name),
            }, Actor, ct);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            return new AdminOutcome<PoolView>.Conflict("pool-name-taken", $"A pool named {name} already exists.");
        }

        LogRegistered(pool.Name, pool.Host, pool.Port);
        if (check is RegistrationCheck.Passed { Closed.Count: > 0 } passed)
        {
            await pools.AppendEventAsync(pool.Id, null, PoolEventNames.Hardened, $"revoked CONNECT from PUBLIC on: {string.Join(", ", passed.Closed)}", Actor, ct);
        }

        await health.CheckAsync(pool.Id, ct);
        return new AdminOutcome<PoolView>.Done(PoolView.From(await pools.GetAsync(pool.Id, ct) ?? pool));
    }

    [GeneratedRegex("^[a-z][a-z0-9-]{0,62}$")]
    private static partial Regex PoolName();

    // Host names, IPv4 and IPv6 literals; nothing that could smuggle connection-string syntax.
    [GeneratedRegex(@"^[A-Za-z0-9]([A-Za-z0-9.\-_:]*[A-Za-z0-9])?$")]
    private static partial Regex HostName();

    // PostgreSQL role names as managed services spell them (user, or user@server).
    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_$.@-]{0,62}$")]
    private static partial Regex RoleName();

    private static Dictionary<string, string[]> Validate(RegisterPoolRequest r)
    {
        var errors = new Dictionary<string, string[]>();
        void Check(bool ok, string field, string message)
        {
            if (!ok)
            {
                errors[field] = [message];
            }
        }

        Check(r.Name is not null && PoolName().IsMatch(r.Name), "name", "name must be 1-63 characters: a lower-case letter, then lower-case letters, digits or '-'.");
        Check(r.Host is { Length: > 0 and <= MaxHostLength } && HostName().IsMatch(r.Host), "host", "host must be a host name or IP address.");
        Check(r.Port is >= 1 and <= 65535, "port", "port must be between 1 and 65535.");
        Check(r.AdminUser is not null && RoleName().IsMatch(r.AdminUser), "admin_user", "admin_user must be a PostgreSQL role name (at most 63 characters).");
        Check(r.AdminPassword is { Length: > 0 and <= MaxPasswordLength } && !r.AdminPassword.Any(char.IsControl), "admin_password",
            $"admin_password is required (at most {MaxPasswordLength} characters, no control characters).");
        Check(r.MaxInstances is >= 1 and <= MaxInstancesLimit, "max_instances", $"max_instances must be between 1 and {MaxInstancesLimit}.");
        Check(r.Priority is null or (>= 0 and <= MaxPriority), "priority", $"priority must be between 0 and {MaxPriority}.");
        Check(r.ServerType is null or "shared" or "dedicated", "server_type", "server_type must be 'shared' or 'dedicated'.");
        return errors;
    }

    private static T? Filter<T>(string field, string? value, Dictionary<string, string[]> errors) where T : struct, Enum
    {
        if (string.IsNullOrEmpty(value))
        {
            return null;
        }

        if (Vocabulary.TryParse<T>(value, out var parsed))
        {
            return parsed;
        }

        errors[field] = [$"{field} must be one of: {string.Join(", ", Enum.GetValues<T>().Select(v => v.ToSql()))}."];
        return null;
    }

    private static int Number(string field, string? value, int fallback, int min, int max, Dictionary<string, string[]> errors)
    {
        if (string.IsNullOrEmpty(value))
        {
            return fallback;
        }

        if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max)
        {
            return n;
        }

        errors[field] = [$"{field} must be a whole number between {min} and {max}."];
        return fallback;
    }

    private static AdminOutcome<T> NotFound<T>(long id) => new AdminOutcome<T>.NotFound("pool-not-found", $"There is no pool {id}.");

    [LoggerMessage(LogLevel.Information, "Pool {Pool} drained")]
    private partial void LogDrained(string pool);

    [LoggerMessage(LogLevel.Warning, "Pool {Pool} not activated: its server did not answer the probe ({Error})")]
    private partial void LogActivationRefused(string pool, string? error);

    [LoggerMessage(LogLevel.Information, "Pool {Pool} activated ({Status})")]
    private partial void LogActivated(string pool, string status);

    [LoggerMessage(LogLevel.Warning, "Registration of server {Host}:{Port} refused: {Reason}")]
    private partial void LogRegistrationRefused(string host, int port, string reason);

    [LoggerMessage(LogLevel.Information, "Registered server {Host}:{Port} as pool {Pool}")]
    private partial void LogRegistered(string pool, string host, int port);
}
