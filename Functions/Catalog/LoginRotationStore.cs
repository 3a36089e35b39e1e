using Npgsql;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Catalog;

/// <summary>A rotation as the catalog records it, with the tenant's pool.</summary>
public sealed record LoginRotation(Pool Pool, long TenantId, Guid InstanceId, string PlanTier, string DbUser, long? RotationId,
    string? RotationLogin, string? RotationState, string? RetiringLogin)
{
    /// <summary>The tenant's database name (an adopted tenant's names come from its row, issue 14 item 7).</summary>
    public string DbName { get; init; } = "";

    /// <summary>An adopted tenant's owner role; null for a tenant the allocator made.</summary>
    public string? OwnerRole { get; init; }

    /// <summary>An adopted tenant's first login; null for a tenant the allocator made.</summary>
    public string? LoginRole { get; init; }
}

/// <summary>What <see cref="LoginRotationStore.BeginAsync"/> came to.</summary>
public abstract record RotationStart
{
    /// <summary>Recorded (password encrypted) as <c>setting</c>: set it on <see cref="Login"/>, the idle login.</summary>
    public sealed record Begun(long RotationId, string Login) : RotationStart;

    /// <summary>Another rotation of this tenant is in flight.</summary>
    public sealed record InProgress : RotationStart;

    public sealed record NotFound : RotationStart;
    public sealed record NotReady(TenantDatabaseStatus Status) : RotationStart;
}

public enum RotationCommit { Committed, AlreadyCommitted, Superseded }

/// <summary>
/// The alternating-login rotation of <c>tenant_databases</c> (DESIGN.md §9). Every change of a login on a pool runs while
/// this tenant's row is locked here, so a rotation setting a login and a claim or sweep retiring it never interleave.
/// </summary>
public sealed class LoginRotationStore(NpgsqlDataSource catalog)
{
    private const string Columns = """
        t.id AS t_id, t.instance_id AS t_instance_id, t.plan_tier AS t_plan_tier, t.db_user AS t_db_user, t.rotation_id AS t_rotation_id,
        t.rotation_login AS t_rotation_login, t.rotation_state AS t_rotation_state, t.retiring_login AS t_retiring_login,
        t.db_name AS t_db_name, t.owner_role AS t_owner_role, t.login_role AS t_login_role
        """;

    /// <summary>
    /// Records a new rotation of a ready tenant with its password already encrypted, before that password is set anywhere:
    /// the idle login of the two is its target; the login in use (<c>db_user</c>) is never a target. Refused while another
    /// rotation is <c>setting</c> and younger than <paramref name="lease"/> (an older one was abandoned by a crash).
    /// </summary>
    public async Task<RotationStart> BeginAsync(Guid instanceId, string loginA, string loginB, string passwordCiphertext, TimeSpan lease, CancellationToken ct)
    {
        await using var conn = await catalog.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        long id;
        string dbUser;
        await using (var find = new NpgsqlCommand($"""
            SELECT id, status, db_user, rotation_state = 'setting' AND rotation_started_at > now() - @lease AS busy
            FROM tenant_databases
            WHERE instance_id = @instance_id AND status IN {LiveStatuses.Sql}
            FOR UPDATE
            """, conn, tx))
        {
            find.Parameters.AddWithValue("instance_id", instanceId);
            find.Parameters.AddWithValue("lease", lease);
            await using var reader = await find.ExecuteReaderAsync(ct);
            if (!await reader.ReadAsync(ct))
            {
                return new RotationStart.NotFound();
            }

            var status = Vocabulary.Parse<TenantDatabaseStatus>(reader.GetString(1));
            if (status != TenantDatabaseStatus.Ready)
            {
                return new RotationStart.NotReady(status);
            }

            if (!reader.IsDBNull(3) && reader.GetBoolean(3))
            {
                return new RotationStart.InProgress();
            }

            id = reader.GetInt64(0);
            dbUser = reader.GetString(2);
        }

        var login = dbUser == loginA ? loginB : loginA;
        await using var begin = new NpgsqlCommand("""
            UPDATE tenant_databases
            SET rotation_id = nextval('login_rotation_seq'), rotation_login = @login, rotation_password_encrypted = @ciphertext, first_password_encrypted = NULL,
                rotation_state = 'setting', rotation_started_at = now(), rotation_deposited_at = NULL,
                -- the idle login is about to log in again with the new password: it is no longer to be retired
                retiring_login = CASE WHEN retiring_login = @login THEN NULL ELSE retiring_login END,
                updated_at = now()
            WHERE id = @id
            RETURNING rotation_id
            """, conn, tx);
        begin.Parameters.AddWithValue("id", id);
        begin.Parameters.AddWithValue("login", login);
        begin.Parameters.AddWithValue("ciphertext", passwordCiphertext);
        var rotationId = (long)(await begin.ExecuteScalarAsync(ct))!;
        await tx.CommitAsync(ct);
        return new RotationStart.Begun(rotationId, login);
    }

    /// <summary>
    /// Runs <paramref name="setOnPool"/> (the password set on the rotation's login) only while this rotation is still the
    /// tenant's current one in flight, holding the row so nothing retires that login meanwhile. Null: superseded; else
    /// what <paramref name="setOnPool"/> answered.
    /// </summary>
    public async Task<bool?> WhileSettingAsync(long tenantId, long poolId, long rotationId, Func<string, Task<bool>> setOnPool, CancellationToken ct)
    {
        bool? set = null;
        // Still on the pool the caller sets the password on: a move that switched the tenant meanwhile supersedes this rotation.
        // setOnPool gets the tenant's plan_tier as read under the lock: a login made now gets the limit of the tier a tier change
        // (which takes the same lock) left, not of the one read before.
        var current = await WhileLockedAsync(tenantId,
            $"t.rotation_id = @rotation_id AND t.rotation_state = 'setting' AND t.status = '{Words.Ready}' AND t.db_server_id = {poolId}", rotationId,
            async row => { set = await setOnPool(row.PlanTier); return null; }, ct);
        return current ? set : null;
    }

    /// <summary>The deposit of the rotation is in the handoff: no longer in flight, waiting for its claim.</summary>
    public Task<bool> MarkDepositedAsync(long tenantId, long rotationId, CancellationToken ct) =>
        UpdateAsync("rotation_state = 'pending', rotation_deposited_at = now()", "rotation_state IN ('setting', 'unconfirmed')", tenantId, rotationId, ct);

    /// <summary>The rotation failed mid-way (its set or deposit may or may not have happened): no longer in flight.</summary>
    public Task<bool> MarkUnconfirmedAsync(long tenantId, long rotationId, CancellationToken ct) =>
        UpdateAsync("rotation_state = 'unconfirmed'", "rotation_state = 'setting'", tenantId, rotationId, ct);

    /// <summary>
    /// The rotation's password was claimed (or its grace ended): its login becomes <c>db_user</c>, the other one is to be
    /// retired. A deposit exists only once its password was set, so any not-yet-committed state of the same rotation commits.
    /// Already committed (a replayed claim, or a claim after the grace): its <paramref name="login"/> is still the one in use
    /// — a later rotation targets the other login until it is itself committed, which needs a newer deposit.
    /// </summary>
    public async Task<RotationCommit> CommitAsync(long tenantId, long rotationId, string login, string actor, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            WITH t AS (
                UPDATE tenant_databases
                SET retiring_login = db_user, db_user = rotation_login, rotation_state = 'committed',
                    rotation_password_encrypted = NULL, updated_at = now()
                WHERE id = @id AND rotation_id = @rotation_id AND rotation_state IN ('setting', 'unconfirmed', 'pending') AND status = '{Words.Ready}'
                RETURNING db_server_id, instance_id
            ), event AS (
                INSERT INTO pool_events (db_server_id, instance_id, event, reason, actor)
                SELECT db_server_id, instance_id, '{PoolEventNames.LoginRotated}', 'the new password was claimed', @actor FROM t
            )
            SELECT 'now' FROM t
            UNION ALL
            SELECT CASE WHEN db_user = @login THEN 'committed' ELSE 'superseded' END
            FROM tenant_databases WHERE id = @id AND status = '{Words.Ready}' AND NOT EXISTS (SELECT FROM t)
            """);
        cmd.Parameters.AddWithValue("id", tenantId);
        cmd.Parameters.AddWithValue("login", login);
        cmd.Parameters.AddWithValue("rotation_id", rotationId);
        cmd.Parameters.AddWithValue("actor", actor);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        if (!await reader.ReadAsync(ct) || await reader.IsDBNullAsync(0, ct))
        {
            return RotationCommit.Superseded;
        }

        // Either this statement committed it ('now'), or what it found: committed earlier, or replaced.
        return reader.GetString(0) switch
        {
            "now" => RotationCommit.Committed,
            "committed" => RotationCommit.AlreadyCommitted,
            _ => RotationCommit.Superseded,
        };
    }

    /// <summary>Retires the login <c>retiring_login</c> names, if any, holding the row; clears it once done.</summary>
    public Task<bool> WhileRetiringAsync(long tenantId, Func<string, Task> disableOnPool, CancellationToken ct) =>
        WhileLockedAsync(tenantId, "t.retiring_login IS NOT NULL", null, async row =>
        {
            await disableOnPool(row.RetiringLogin!);
            return "retiring_login = NULL";
        }, ct);

    /// <summary>
    /// Gives up a rotation nobody holds the password of: one that never reached the handoff (crash, fault), or one handed off
    /// but never claimed within the grace. Its login is refused and its ciphertext gone; the login in use stays (DESIGN §8.3).
    /// </summary>
    public Task<bool> WhileAbandoningAsync(long tenantId, long rotationId, Func<string, Task> disableOnPool, CancellationToken ct) =>
        WhileLockedAsync(tenantId, "t.rotation_id = @rotation_id AND t.rotation_state IN ('setting', 'unconfirmed', 'pending') AND t.rotation_login <> t.db_user", rotationId,
            async row =>
            {
                await disableOnPool(row.RotationLogin!);
                return "rotation_state = 'abandoned', rotation_password_encrypted = NULL";
            }, ct);

    /// <summary>
    /// Rotations the sweep must finish: deposited before <paramref name="graceCutoff"/> and never claimed, failed or stuck
    /// ones started before it, and logins still to retire.
    /// </summary>
    public async Task<IReadOnlyList<LoginRotation>> ListDueAsync(DateTimeOffset graceCutoff, int limit, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT s.*, {Columns}
            FROM tenant_databases t JOIN db_servers s ON s.id = t.db_server_id
            WHERE (t.rotation_state IN ('setting', 'unconfirmed', 'pending') OR t.retiring_login IS NOT NULL)
              AND t.status = '{Words.Ready}'
              AND (t.retiring_login IS NOT NULL
                   OR t.rotation_state = 'pending' AND t.rotation_deposited_at < @cutoff
                   OR t.rotation_state IN ('setting', 'unconfirmed') AND t.rotation_started_at < @cutoff)
            ORDER BY t.id LIMIT @limit
            """);
        cmd.Parameters.AddWithValue("cutoff", graceCutoff);
        cmd.Parameters.AddWithValue("limit", limit);
        var rows = new List<LoginRotation>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            rows.Add(ReadRotation(reader));
        }

        return rows;
    }

    /// <summary>The rotation columns of an instance's live row (null when it has none).</summary>
    public async Task<LoginRotation?> FindAsync(Guid instanceId, CancellationToken ct)
    {
        await using var cmd = catalog.CreateCommand($"""
            SELECT s.*, {Columns}
            FROM tenant_databases t JOIN db_servers s ON s.id = t.db_server_id
            WHERE t.instance_id = @instance_id AND t.status IN {LiveStatuses.Sql}
            """);
        cmd.Parameters.AddWithValue("instance_id", instanceId);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? ReadRotation(reader) : null;
    }

    private static LoginRotation ReadRotation(NpgsqlDataReader r) => new(
        r.ToPool(),
        r.GetInt64(r.GetOrdinal("t_id")),
        r.GetGuid(r.GetOrdinal("t_instance_id")),
        r.GetString(r.GetOrdinal("t_plan_tier")),
        r.GetString(r.GetOrdinal("t_db_user")),
        r.IsDBNull(r.GetOrdinal("t_rotation_id")) ? null : r.GetInt64(r.GetOrdinal("t_rotation_id")),
        r.IsDBNull(r.GetOrdinal("t_rotation_login")) ? null : r.GetString(r.GetOrdinal("t_rotation_login")),
        r.IsDBNull(r.GetOrdinal("t_rotation_state")) ? null : r.GetString(r.GetOrdinal("t_rotation_state")),
        r.IsDBNull(r.GetOrdinal("t_retiring_login")) ? null : r.GetString(r.GetOrdinal("t_retiring_login")))
    {
        DbName = r.GetString(r.GetOrdinal("t_db_name")),
        OwnerRole = r.IsDBNull(r.GetOrdinal("t_owner_role")) ? null : r.GetString(r.GetOrdinal("t_owner_role")),
        LoginRole = r.IsDBNull(r.GetOrdinal("t_login_role")) ? null : r.GetString(r.GetOrdinal("t_login_role")),
    };

    private async Task<bool> UpdateAsync(string set, string when, long tenantId, long rotationId, CancellationToken ct)
    {
        // Both fragments are this class's own constants; values travel only as parameters.
        await using var cmd = catalog.CreateCommand($"""
            UPDATE tenant_databases SET {set}, updated_at = now()
            WHERE id = @id AND rotation_id = @rotation_id AND {when}
            """);
        cmd.Parameters.AddWithValue("id", tenantId);
        cmd.Parameters.AddWithValue("rotation_id", rotationId);
        return await cmd.ExecuteNonQueryAsync(ct) == 1;
    }

    /// <summary>
    /// Locks the tenant's row when <paramref name="condition"/> holds, runs <paramref name="act"/> on the pool while it is
    /// held, then applies the SET clause it returns (if any) and commits. False when the condition did not hold.
    /// </summary>
    private async Task<bool> WhileLockedAsync(long tenantId, string condition, long? rotationId, Func<LoginRotation, Task<string?>> act, CancellationToken ct)
    {
        await using var conn = await catalog.OpenConnectionAsync(ct);
        await using var tx = await conn.BeginTransactionAsync(ct);
        LoginRotation row;
        await using (var find = new NpgsqlCommand($"""
            SELECT s.*, {Columns}
            FROM tenant_databases t JOIN db_servers s ON s.id = t.db_server_id
            WHERE t.id = @id AND {condition}
            FOR UPDATE OF t
            """, conn, tx))
        {
            find.Parameters.AddWithValue("id", tenantId);
            if (rotationId is { } rid)
            {
                find.Parameters.AddWithValue("rotation_id", rid);
            }

            await using var reader = await find.ExecuteReaderAsync(ct);
            if (!await reader.ReadAsync(ct))
            {
                return false;
            }

            row = ReadRotation(reader);
        }

        if (await act(row) is { } set)
        {
            await using var update = new NpgsqlCommand($"UPDATE tenant_databases SET {set}, updated_at = now() WHERE id = @id", conn, tx);
            update.Parameters.AddWithValue("id", tenantId);
            await update.ExecuteNonQueryAsync(ct);
        }

        await tx.CommitAsync(ct);
        return true;
    }
}
