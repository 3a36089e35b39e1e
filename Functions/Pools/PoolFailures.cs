using System.Net.Sockets;
using Npgsql;

namespace TenantDb.Functions.Pools;

/// <summary>How the allocation paths tell a failing pool server from load, and what of a failure may be recorded.</summary>
public static class PoolFailures
{
    /// <summary>A failure another pool or a later try may not have: the database, the network or a timeout.</summary>
    public static bool IsTransient(Exception e) => e is NpgsqlException or TimeoutException or SocketException;

    // The allocator's own connection pool to the server running dry is load here, not a failing server.
    public static bool IsConnectionFailure(Exception e) =>
        !IsAdminPoolExhausted(e) && (e is NpgsqlException { InnerException: SocketException or IOException or TimeoutException } or TimeoutException or SocketException
        || e is NpgsqlException and not PostgresException && e.InnerException is not OperationCanceledException
        || e is PostgresException { SqlState: PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CannotConnectNow or PostgresErrorCodes.CrashShutdown });

    // Npgsql signals a pool with no free connection within its timeout by this message (no SqlState, no socket error).
    private static bool IsAdminPoolExhausted(Exception e) =>
        e is NpgsqlException and not PostgresException && e.Message.StartsWith("The connection pool has been exhausted", StringComparison.Ordinal);

    // Server messages only: never a command text (a DDL carries a password verifier).
    public static string Describe(Exception e) => e switch
    {
        PostgresException pg => $"{pg.SqlState} {pg.MessageText}",
        _ => e.Message,
    };
}
