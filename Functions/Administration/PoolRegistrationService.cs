using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Npgsql;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Drivers;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Administration;

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

/// <summary>Registers an existing PostgreSQL server as a pool.</summary>
public sealed partial class PoolRegistrationService(
    PoolStore pools,
    HealthService health,
    PoolProvisioners provisioners,
    PoolAdminPasswords passwords,
    RegisteredServerAudit audit,
    ILogger<PoolRegistrationService> logger)
{
    private const int MaxPasswordLength = 1024;
    private const int MaxHostLength = 253;
    private const int MaxInstancesLimit = 10_000;
    private const int MaxPriority = 1_000_000;

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

        var type = Vocabulary.Parse<ServerType>(request.ServerType ?? ServerType.Shared.ToSql());
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
                Priority = request.Priority ?? NewPool.DefaultPriority,
                Driver = DriverNames.Registered,
                DriverResourceId = endpoint.ResourceId,
                AdminUser = request.AdminUser!,
                AdminPasswordEncrypted = passwords.Protect(request.AdminPassword!, name),
            }, AuditActor.Current, ct);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            return new AdminOutcome<PoolView>.Conflict("pool-name-taken", $"A pool named {name} already exists.");
        }

        LogRegistered(pool.Name, pool.Host, pool.Port);
        if (check is RegistrationCheck.Passed { Closed.Count: > 0 } passed)
        {
            await pools.AppendEventAsync(pool.Id, null, PoolEventNames.Hardened, $"revoked CONNECT from PUBLIC on: {string.Join(", ", passed.Closed)}", AuditActor.Current, ct);
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
        Check(r.Host is { Length: > 0 and <= MaxHostLength } && HostName().IsMatch(r.Host) && !IsUnspecifiedAddress(r.Host), "host",
            "host must be a host name or IP address (not 0.0.0.0 or ::).");
        Check(r.Port is >= 1 and <= 65535, "port", "port must be between 1 and 65535.");
        Check(r.AdminUser is not null && RoleName().IsMatch(r.AdminUser), "admin_user", "admin_user must be a PostgreSQL role name (at most 63 characters).");
        Check(r.AdminPassword is { Length: > 0 and <= MaxPasswordLength } && !r.AdminPassword.Any(char.IsControl), "admin_password",
            $"admin_password is required (at most {MaxPasswordLength} characters, no control characters).");
        Check(r.MaxInstances is >= 1 and <= MaxInstancesLimit, "max_instances", $"max_instances must be between 1 and {MaxInstancesLimit}.");
        Check(r.Priority is null or (>= 0 and <= MaxPriority), "priority", $"priority must be between 0 and {MaxPriority}.");
        Check(r.ServerType is null || (Vocabulary.TryParse<ServerType>(r.ServerType, out var type) && type is ServerType.Shared or ServerType.Dedicated),
            "server_type", $"server_type must be '{ServerType.Shared.ToSql()}' or '{ServerType.Dedicated.ToSql()}'.");
        return errors;
    }

    /// <summary>0.0.0.0 or :: (also spelled "0" or "0::0"): no server to connect to, and the resolver throws on it.</summary>
    private static bool IsUnspecifiedAddress(string host) =>
        System.Net.IPAddress.TryParse(host, out var address) && (address.Equals(System.Net.IPAddress.Any) || address.Equals(System.Net.IPAddress.IPv6Any));

    [LoggerMessage(LogLevel.Warning, "Registration of server {Host}:{Port} refused: {Reason}")]
    private partial void LogRegistrationRefused(string host, int port, string reason);

    [LoggerMessage(LogLevel.Information, "Registered server {Host}:{Port} as pool {Pool}")]
    private partial void LogRegistered(string pool, string host, int port);
}
