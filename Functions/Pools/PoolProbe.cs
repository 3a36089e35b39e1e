using System.Diagnostics;
using Npgsql;

namespace TenantDb.Functions.Pools;

public sealed record ProbeResult(bool Ok, int ElapsedMs, string? Version, int? DatabaseCount, string? Error);

/// <summary>
/// Readiness and health: a real query over a fresh TCP connection to the <c>postgres</c> database (never template0/1:
/// a session on template1 makes every concurrent CREATE DATABASE fail).
/// </summary>
public static class PoolProbe
{
    public static async Task<ProbeResult> ProbeAsync(string host, int port, string user, string password, TimeSpan timeout, CancellationToken ct)
    {
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = host, Port = port, Username = user, Password = password, Database = "postgres",
            Pooling = false, Timeout = Math.Max(1, (int)timeout.TotalSeconds), CommandTimeout = Math.Max(1, (int)timeout.TotalSeconds),
            ApplicationName = "tenantdb-health",
        };
        var watch = Stopwatch.StartNew();
        try
        {
            await using var conn = new NpgsqlConnection(builder.ConnectionString);
            await conn.OpenAsync(ct);
            await using var cmd = new NpgsqlCommand(
                "SELECT current_setting('server_version'), (SELECT count(*)::int FROM pg_database WHERE NOT datistemplate)", conn);
            await using var reader = await cmd.ExecuteReaderAsync(ct);
            await reader.ReadAsync(ct);
            return new ProbeResult(true, (int)watch.ElapsedMilliseconds, reader.GetString(0), reader.GetInt32(1), null);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException || e is OperationCanceledException && !ct.IsCancellationRequested)
        {
            return new ProbeResult(false, (int)watch.ElapsedMilliseconds, null, null, e is PostgresException pg ? $"{pg.SqlState} {pg.MessageText}" : e.Message);
        }
    }
}
