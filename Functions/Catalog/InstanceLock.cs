using Npgsql;

namespace TenantDb.Functions.Catalog;

/// <summary>
/// "A worker is alive on this instance": a session advisory lock on the instance id, held on one catalog connection from
/// the reservation until the row is ready or compensated. Whoever acts on an instance's objects outside an allocation (the
/// sweep's recovery of abandoned rows, the cleanup of failed leftovers) only try-locks it, so a slow allocation is never
/// mistaken for a dead one, and no allocation can start while they act. A crashed worker's session ends, and its lock with it.
/// </summary>
public sealed class InstanceLock : IAsyncDisposable
{
    /// <summary>The lock space of instance locks (two-key advisory locks never collide with the one-key locks of provisioning).</summary>
    private const int LockClass = 0x74646231;

    /// <summary>SQL that try-locks the instance on this connection (re-entrant: each success is released by <c>pg_advisory_unlock_all</c>).</summary>
    internal const string TryLockSql = "pg_try_advisory_lock(@lock_class, @lock_key)";

    internal const string UnlockSql = "SELECT pg_advisory_unlock_all()";

    private InstanceLock(NpgsqlConnection connection, Guid instanceId)
    {
        Connection = connection;
        InstanceId = instanceId;
    }

    public Guid InstanceId { get; }

    /// <summary>Whether this connection holds the lock now.</summary>
    public bool Held { get; internal set; }

    internal NpgsqlConnection Connection { get; }

    /// <summary>Opens the connection the lock lives on (from the pool: no round trip). Nothing is locked yet.</summary>
    public static async Task<InstanceLock> OpenAsync(NpgsqlDataSource catalog, Guid instanceId, CancellationToken ct) =>
        new(await catalog.OpenConnectionAsync(ct), instanceId);

    /// <summary>Takes the lock if no one holds it; false means a live worker is on this instance.</summary>
    public async Task<bool> TryAcquireAsync(CancellationToken ct)
    {
        await using var cmd = Command($"SELECT {TryLockSql}");
        var heldBefore = Held;
        Held = true; // until the answer says otherwise: a call cancelled after the server took the lock must still release it
        Held = heldBefore | (bool)(await cmd.ExecuteScalarAsync(ct))!;
        return Held;
    }

    /// <summary>A command on the lock's connection with the lock's key as parameters.</summary>
    internal NpgsqlCommand Command(string sql)
    {
        var cmd = new NpgsqlCommand(sql, Connection);
        cmd.Parameters.AddWithValue("lock_class", LockClass);
        cmd.Parameters.AddWithValue("lock_key", KeyOf(InstanceId));
        return cmd;
    }

    /// <summary>Releases the lock (if held) and returns the connection to the pool; a broken connection took its lock with it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Held && Connection.FullState == System.Data.ConnectionState.Open)
        {
            try
            {
                await using var unlock = new NpgsqlCommand(UnlockSql, Connection);
                await unlock.ExecuteNonQueryAsync(CancellationToken.None);
                Held = false;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
            {
                // The connection broke: the server ends the session and releases the lock.
            }
        }

        if (Held)
        {
            // Never hand a connection that may still hold the lock back to the pool.
            NpgsqlConnection.ClearPool(Connection);
        }

        await Connection.DisposeAsync();
    }

    private static int KeyOf(Guid instanceId)
    {
        Span<byte> bytes = stackalloc byte[16];
        instanceId.TryWriteBytes(bytes);
        return BitConverter.ToInt32(bytes[..4]) ^ BitConverter.ToInt32(bytes[4..8]) ^ BitConverter.ToInt32(bytes[8..12]) ^ BitConverter.ToInt32(bytes[12..]);
    }
}
