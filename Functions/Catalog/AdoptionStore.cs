using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Catalog;

/// <summary>One existing database to record as a ready tenant (issue 14 item 7).</summary>
public sealed record AdoptedTenant(Guid InstanceId, Guid CustomerId, string PlanTier, string DbName, string DbUser, string OwnerRole);

/// <summary>
/// The catalog half of adopting existing databases: one transaction that holds the pool's row locked from the first check to the
/// last insert, so two adoptions of one pool (or an adoption and an allocation there) never interleave and the capacity seen is
/// the capacity taken. The caller runs its pool DDL while the batch is open and commits only when all of it succeeded.
/// </summary>
public sealed class AdoptionStore(NpgsqlDataSource catalog)
{
    /// <summary>Opens the batch: the pool's row locked (null <see cref="AdoptionBatch.Pool"/> when there is no such pool).</summary>
    public async Task<AdoptionBatch> BeginAsync(long poolId, CancellationToken ct)
    {
        var conn = await catalog.OpenConnectionAsync(ct);
        try
        {
            var tx = await conn.BeginTransactionAsync(ct);
            await using var cmd = new NpgsqlCommand("SELECT * FROM db_servers WHERE id = @id FOR UPDATE", conn, tx);
            cmd.Parameters.AddWithValue("id", poolId);
            Pool? pool;
            await using (var reader = await cmd.ExecuteReaderAsync(ct))
            {
                pool = await reader.ReadAsync(ct) ? reader.ToPool() : null;
            }

            return new AdoptionBatch(conn, tx, pool);
        }
        catch
        {
            await conn.DisposeAsync();
            throw;
        }
    }

    /// <summary>Whether any of the instances is a live adopted tenant: tells a commit that happened from one that did not when its answer was lost.</summary>
    public async Task<bool> AnyAdoptedAsync(Guid[] instanceIds, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand(
            $"SELECT EXISTS (SELECT FROM tenant_databases WHERE instance_id = ANY(@ids) AND adopted_at IS NOT NULL AND status IN {LiveStatuses.Sql})");
        cmd.Parameters.AddWithValue("ids", instanceIds);
        return (bool)(await cmd.ExecuteScalarAsync(ct))!;
    }
}

/// <summary>An open adoption: the pool's row locked until <see cref="CommitAsync"/> or disposal (which rolls back).</summary>
public sealed class AdoptionBatch(NpgsqlConnection conn, NpgsqlTransaction tx, Pool? pool) : IAsyncDisposable
{
    public Pool? Pool { get; } = pool;

    /// <summary>Those of <paramref name="instanceIds"/> that already have a live database.</summary>
    public async Task<IReadOnlySet<Guid>> LiveInstancesAsync(IReadOnlyCollection<Guid> instanceIds, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            $"SELECT instance_id FROM tenant_databases WHERE instance_id = ANY(@ids) AND status IN {LiveStatuses.Sql}", conn, tx);
        cmd.Parameters.AddWithValue("ids", instanceIds.ToArray());
        var live = new HashSet<Guid>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            live.Add(reader.GetGuid(0));
        }

        return live;
    }

    /// <summary>Those of <paramref name="databases"/> that a live tenant of this pool already is (or is being made as).</summary>
    public async Task<IReadOnlySet<string>> TenantDatabasesAsync(IReadOnlyCollection<string> databases, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand(
            $"SELECT db_name FROM tenant_databases WHERE db_server_id = @pool AND db_name = ANY(@names) AND status IN {LiveStatuses.Sql}", conn, tx);
        cmd.Parameters.AddWithValue("pool", Pool!.Id);
        cmd.Parameters.AddWithValue("names", databases.ToArray());
        var taken = new HashSet<string>(StringComparer.Ordinal);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            taken.Add(reader.GetString(0));
        }

        return taken;
    }

    /// <summary>
    /// Inserts the tenants as ready (adopted now, names from their rows), takes their slots (the pool turns full at its limit) and
    /// records a <c>tenant_adopted</c> event per tenant, in one statement. The caller has checked the room under this lock.
    /// </summary>
    /// <exception cref="PostgresException">23505 when an instance got a live database meanwhile (the batch is then void).</exception>
    public async Task<IReadOnlyList<TenantDatabase>> InsertAsync(IReadOnlyList<AdoptedTenant> tenants, string actor, CancellationToken ct)
    {
        await using var cmd = new NpgsqlCommand($"""
            WITH input AS (
                SELECT * FROM unnest(@instance_ids, @customer_ids, @tiers, @db_names, @db_users, @owners)
                    AS i(instance_id, customer_id, plan_tier, db_name, db_user, owner_role)
            ), p AS (
                UPDATE db_servers SET current_instances = current_instances + @n,
                    status = CASE WHEN current_instances + @n >= max_instances THEN '{Words.Full}' ELSE status END, updated_at = now()
                WHERE id = @pool AND current_instances + @n <= max_instances
                RETURNING id, status
            ), t AS (
                INSERT INTO tenant_databases (instance_id, customer_id, plan_tier, db_server_id, db_name, db_user, status, ready_at,
                    owner_role, login_role, adopted_at)
                SELECT i.instance_id, i.customer_id, i.plan_tier, p.id, i.db_name, i.db_user, '{Words.Ready}', now(), i.owner_role, i.db_user, now()
                FROM input i, p
                RETURNING *
            ), events AS (
                INSERT INTO pool_events (db_server_id, instance_id, event, from_status, to_status, reason, actor)
                SELECT db_server_id, instance_id, '{PoolEventNames.TenantAdopted}', NULL, '{Words.Ready}',
                       'adopted existing database ' || db_name || ' (login ' || login_role || ', owner ' || owner_role || ')', @actor FROM t
                UNION ALL
                SELECT id, NULL, '{PoolEventNames.StatusChanged}', '{Words.Active}', '{Words.Full}', 'capacity reached', @actor FROM p WHERE status = '{Words.Full}'
            )
            SELECT * FROM t ORDER BY id
            """, conn, tx);
        cmd.Parameters.AddWithValue("instance_ids", tenants.Select(t => t.InstanceId).ToArray());
        cmd.Parameters.AddWithValue("customer_ids", tenants.Select(t => t.CustomerId).ToArray());
        cmd.Parameters.AddWithValue("tiers", tenants.Select(t => t.PlanTier).ToArray());
        cmd.Parameters.AddWithValue("db_names", tenants.Select(t => t.DbName).ToArray());
        cmd.Parameters.AddWithValue("db_users", tenants.Select(t => t.DbUser).ToArray());
        cmd.Parameters.AddWithValue("owners", tenants.Select(t => t.OwnerRole).ToArray());
        cmd.Parameters.AddWithValue("n", tenants.Count);
        cmd.Parameters.AddWithValue("pool", Pool!.Id);
        cmd.Parameters.AddWithValue("actor", actor);
        var rows = new List<TenantDatabase>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            rows.Add(reader.ToTenant());
        }

        if (rows.Count != tenants.Count)
        {
            throw new InvalidOperationException("The pool had no room for the adopted tenants although it was checked under its lock.");
        }

        return rows;
    }

    public Task CommitAsync(CancellationToken ct) => tx.CommitAsync(ct);

    public async ValueTask DisposeAsync()
    {
        await tx.DisposeAsync();
        await conn.DisposeAsync();
    }
}
