using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Administration;

/// <summary>The adopt body: existing databases of a registered pool to make tenants of the catalog. Nothing is trusted yet.</summary>
public sealed record AdoptDatabasesRequest(IReadOnlyList<AdoptDatabase?>? Databases);

/// <summary>One existing database, the login that uses it, and the tenant it becomes.</summary>
public sealed record AdoptDatabase(string? InstanceId, string? CustomerId, string? PlanTier, string? DbName, string? DbUser);

/// <summary>What an adoption made: the pool and the new tenants, where they live (never a password: the platform holds it).</summary>
public sealed record AdoptionView(long PoolId, int Adopted, IReadOnlyList<AllocationView> Databases);

/// <summary>
/// Adopts existing databases of a registered pool (issue 14 item 7, the platform's move off its old shared server): each becomes a
/// ready tenant, counted in the pool's capacity, without its data, objects, owners or password being touched. The layout is built
/// around the existing login: when it owns the database it is both the tenant's owner role and its first login (its password keeps
/// working; the first rotation adds <c>&lt;login&gt;_b</c> in it and then retires it to NOLOGIN, which leaves the allocator's own
/// layout: a NOLOGIN owner with logins in it); when a NOLOGIN role owns the database, the login must already be its member. All or
/// nothing per request: every check passes before any DDL, and DDL done is undone when a later step fails.
/// </summary>
public sealed partial class TenantAdoptionService(
    AdoptionStore store,
    AdoptionDdl ddl,
    CatalogServer catalogServer,
    IOptions<PoolsOptions> poolsOptions,
    IOptions<AllocationOptions> allocationOptions,
    ILogger<TenantAdoptionService> logger)
{
    /// <summary>Databases one request may adopt.</summary>
    public const int MaxDatabases = 100;

    /// <summary>
    /// Longest adopted name: the restore's scratch names add up to 9 characters (<c>_rs_login</c>), the second login 2, within
    /// PostgreSQL's 63.
    /// </summary>
    public const int MaxNameLength = Identifier.MaxBytes - 9;

    private static readonly string[] SystemDatabases = ["postgres", "template0", "template1"];

    public async Task<AdminOutcome<AdoptionView>> AdoptAsync(long poolId, AdoptDatabasesRequest? request, CancellationToken ct)
    {
        if (Validate(request) is { Count: > 0 } invalid)
        {
            return new AdminOutcome<AdoptionView>.Invalid(invalid);
        }

        var items = request!.Databases!.Select(d => d!).ToList();
        await using var batch = await store.BeginAsync(poolId, ct);
        if (batch.Pool is not { } pool)
        {
            return AdminOutcome<AdoptionView>.PoolNotFound(poolId);
        }

        if (pool.Driver != DriverNames.Registered || pool.Status != PoolStatus.Active)
        {
            return new AdminOutcome<AdoptionView>.Conflict("pool-not-adoptable",
                $"Pool {pool.Id} is a '{pool.Driver}' pool in status '{pool.Status.ToSql()}'; databases are adopted only from an active registered pool (an existing server).");
        }

        if (await IsCatalogServerAsync(pool, ct))
        {
            return new AdminOutcome<AdoptionView>.Unprocessable("catalog-server",
                "This pool is the PostgreSQL server the catalog lives on; the platform's own server is never a tenant pool.");
        }

        if (pool.CurrentInstances + items.Count > pool.MaxInstances)
        {
            return new AdminOutcome<AdoptionView>.Conflict("pool-capacity",
                $"Pool {pool.Id} has room for {pool.MaxInstances - pool.CurrentInstances} more tenants; {items.Count} were asked. Nothing was adopted.");
        }

        var facts = await ddl.InspectAsync(pool, items.Select(i => (i.DbName!, i.DbUser!)).ToList(), ct);
        var live = await batch.LiveInstancesAsync(items.Select(i => Guid.Parse(i.InstanceId!)).ToList(), ct);
        var taken = await batch.TenantDatabasesAsync(items.Select(i => i.DbName!).ToList(), ct);
        var refusals = new Dictionary<string, string[]>(StringComparer.Ordinal);
        for (var i = 0; i < items.Count; i++)
        {
            if (Refusals(pool, items[i], facts[i], live, taken) is { Count: > 0 } reasons)
            {
                refusals[$"databases[{i}]"] = [.. reasons];
            }
        }

        if (refusals.Count > 0)
        {
            LogRefused(pool.Name, refusals.Count);
            return new AdminOutcome<AdoptionView>.Unprocessable("adoption-refused",
                string.Join(" ", refusals.Select(r => $"{r.Key}: {string.Join(" ", r.Value)}")),
                new Dictionary<string, object?> { ["errors"] = refusals });
        }

        var tenants = items.Select((item, i) => new AdoptedTenant(Guid.Parse(item.InstanceId!), Guid.Parse(item.CustomerId!), item.PlanTier!,
            item.DbName!, item.DbUser!, facts[i].OwnerRole)).ToList();
        return await ApplyAsync(batch, pool, tenants, facts, ct);
    }

    private async Task<AdminOutcome<AdoptionView>> ApplyAsync(AdoptionBatch batch, Pool pool, List<AdoptedTenant> tenants, IReadOnlyList<AdoptionFacts> facts, CancellationToken ct)
    {
        var applied = new List<AdoptionFacts>();
        var committing = false;
        try
        {
            for (var i = 0; i < tenants.Count; i++)
            {
                poolsOptions.Value.TryGetTier(tenants[i].PlanTier, out var tier);
                await ddl.ApplyAsync(pool, facts[i], tier.ConnectionLimit, ct);
                applied.Add(facts[i]);
            }

            var rows = await batch.InsertAsync(tenants, AuditActor.Current, ct);
            committing = true;
            await batch.CommitAsync(ct);
            foreach (var row in rows)
            {
                LogAdopted(row.InstanceId, row.DbName, pool.Name);
            }

            var adopted = pool with { CurrentInstances = pool.CurrentInstances + rows.Count };
            return new AdminOutcome<AdoptionView>.Done(new AdoptionView(pool.Id, rows.Count, rows.Select(r => AllocationView.Of(adopted, r)).ToList()));
        }
        catch (Exception e) when (e is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation or PostgresErrorCodes.InsufficientPrivilege }
                                  || PoolFailures.IsTransient(e))
        {
            // A commit whose answer was lost may have happened: then the tenants exist and their DDL stays.
            if (!committing || !await store.AnyAdoptedAsync(tenants.Select(t => t.InstanceId).ToArray(), CancellationToken.None))
            {
                await UndoAsync(pool, applied);
            }

            return e switch
            {
                PostgresException { SqlState: PostgresErrorCodes.UniqueViolation } => new AdminOutcome<AdoptionView>.Conflict("instance-taken",
                    "An instance of the request got a database meanwhile; nothing was adopted."),
                PostgresException { SqlState: PostgresErrorCodes.InsufficientPrivilege } => new AdminOutcome<AdoptionView>.Unprocessable("admin-lacks-rights",
                    $"The pool's admin {pool.AdminUser} may not change these databases or roles (it must be a superuser, or own them); nothing was adopted."),
                _ => new AdminOutcome<AdoptionView>.Unavailable("pool-unavailable",
                    $"Pool {pool.Name} or the catalog failed mid-way ({PoolFailures.Describe(e)}); what was changed was put back. Retry later."),
            };
        }
    }

    private async Task UndoAsync(Pool pool, List<AdoptionFacts> applied)
    {
        foreach (var facts in applied)
        {
            try
            {
                await ddl.UndoAsync(pool, facts, CancellationToken.None);
            }
            catch (Exception e) when (PoolFailures.IsTransient(e))
            {
                LogUndoFailed(e, facts.Database, pool.Name);
            }
        }
    }

    private async Task<bool> IsCatalogServerAsync(Pool pool, CancellationToken ct)
    {
        if (pool.Port == catalogServer.Port && string.Equals(pool.Host, catalogServer.Host, StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        return await ddl.SystemIdentifierAsync(pool, ct) is { } id && await catalogServer.SystemIdentifierAsync(ct) == id;
    }

    private List<string> Refusals(Pool pool, AdoptDatabase item, AdoptionFacts f, IReadOnlySet<Guid> live, IReadOnlySet<string> taken)
    {
        var reasons = new List<string>();
        if (live.Contains(Guid.Parse(item.InstanceId!)))
        {
            reasons.Add("instance_id already has a live database.");
        }

        if (taken.Contains(f.Database))
        {
            reasons.Add($"Database {f.Database} is already a tenant of this catalog.");
        }

        if (poolsOptions.Value.TryGetTier(item.PlanTier, out var tier) && tier.Dedicated != (pool.ServerType == ServerType.Dedicated))
        {
            reasons.Add($"plan_tier {item.PlanTier} is {(tier.Dedicated ? "dedicated" : "shared")} but the pool is {pool.ServerType.ToSql()}.");
        }

        if (!f.Exists)
        {
            reasons.Add($"There is no database {f.Database} on this pool.");
            return reasons;
        }

        if (f.IsTemplate)
        {
            reasons.Add($"Database {f.Database} is a template.");
        }

        if (!f.AllowsConnections)
        {
            reasons.Add($"Database {f.Database} does not accept connections (ALLOW_CONNECTIONS false).");
        }

        if (!f.UserExists)
        {
            reasons.Add($"There is no role {f.DbUser} on this pool.");
            return reasons;
        }

        if (!f.UserCanLogin)
        {
            reasons.Add($"Role {f.DbUser} cannot log in.");
        }

        if (f.DbUser == pool.AdminUser || f.OwnerRole == pool.AdminUser)
        {
            reasons.Add("The pool's admin role is never a tenant's role.");
        }

        if (f.UserPowers.Count > 0 || (f.Owner != f.DbUser && f.OwnerPowers.Count > 0))
        {
            reasons.Add($"The tenant's roles have {string.Join(", ", f.UserPowers.Concat(f.OwnerPowers).Distinct())}: a tenant could lift its own limits.");
        }

        if (f.Owner != f.DbUser && !f.UserInOwner)
        {
            reasons.Add($"Role {f.DbUser} neither owns database {f.Database} nor is a member of its owner {f.Owner}.");
        }

        if (f.Owner != f.DbUser && f.OwnerCanLogin)
        {
            reasons.Add($"The owner {f.Owner} of database {f.Database} can log in itself: only the tenant's logins may.");
        }

        if (f.AlternateExists)
        {
            reasons.Add($"A role {f.DbUser}_b exists already: the tenant's second login (rotation) needs that name.");
        }

        if (f.UserMemberships.Count > 0)
        {
            reasons.Add($"Role {f.DbUser} is a member of {string.Join(", ", f.UserMemberships)}: through them it reaches beyond its database.");
        }

        if (f.OwnerMembers.Count > 0)
        {
            reasons.Add($"Roles {string.Join(", ", f.OwnerMembers)} are members of the owner {f.OwnerRole}: they would act as the tenant.");
        }

        if (f.Elsewhere.Count > 0)
        {
            reasons.Add($"The tenant's roles own or hold objects or grants in other databases ({string.Join(", ", f.Elsewhere)}): purging this tenant would touch them.");
        }

        return reasons;
    }

    private Dictionary<string, string[]> Validate(AdoptDatabasesRequest? request)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (request?.Databases is not { Count: > 0 and <= MaxDatabases } databases)
        {
            errors["databases"] = [$"databases must list 1 to {MaxDatabases} databases to adopt."];
            return errors;
        }

        var prefix = allocationOptions.Value.DatabasePrefix;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < databases.Count; i++)
        {
            var key = $"databases[{i}]";
            if (databases[i] is not { } item)
            {
                errors[key] = ["Each item is an object with instance_id, customer_id, plan_tier, db_name and db_user."];
                continue;
            }

            var reasons = new List<string>();
            if (!AllocationValidator.TryParseId(item.InstanceId, out var instanceId))
            {
                reasons.Add("instance_id must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).");
            }
            else if (!seen.Add("i:" + instanceId))
            {
                reasons.Add("instance_id appears twice in the request.");
            }

            if (!AllocationValidator.TryParseId(item.CustomerId, out _))
            {
                reasons.Add("customer_id must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).");
            }

            if (!poolsOptions.Value.TryGetTier(item.PlanTier, out _))
            {
                reasons.Add($"plan_tier must be one of: {string.Join(", ", poolsOptions.Value.Tiers.Keys.Order(StringComparer.Ordinal))}.");
            }

            foreach (var (field, name) in new[] { ("db_name", item.DbName), ("db_user", item.DbUser) })
            {
                if (name is null || name.Length > MaxNameLength || !Identifier.IsSafe(name))
                {
                    reasons.Add($"{field} must be a plain PostgreSQL identifier: a lower-case letter or '_', then lower-case letters, digits or '_', at most {MaxNameLength} characters.");
                }
                else if (name.StartsWith(prefix, StringComparison.Ordinal) || name.StartsWith("tenantdb_", StringComparison.Ordinal))
                {
                    reasons.Add($"{field} {name} has a name the allocator makes ({prefix}…, tenantdb_…); only databases it did not make are adopted.");
                }
                else if (field == "db_name" && SystemDatabases.Contains(name))
                {
                    reasons.Add($"{name} is a system database; it never becomes a tenant.");
                }
                else if (!seen.Add(field + ":" + name))
                {
                    reasons.Add($"{field} {name} appears twice in the request.");
                }
            }

            if (reasons.Count > 0)
            {
                errors[key] = [.. reasons];
            }
        }

        return errors;
    }

    [LoggerMessage(LogLevel.Information, "Adopted database {Database} of pool {Pool} as instance {InstanceId}")]
    private partial void LogAdopted(Guid instanceId, string database, string pool);

    [LoggerMessage(LogLevel.Warning, "Adoption on pool {Pool} refused: {Count} databases cannot be adopted; nothing changed")]
    private partial void LogRefused(string pool, int count);

    [LoggerMessage(LogLevel.Error, "Could not put back database {Database} on pool {Pool} after a failed adoption; check its PUBLIC grants and login limit")]
    private partial void LogUndoFailed(Exception e, string database, string pool);
}
