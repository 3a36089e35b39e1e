using Npgsql;
using TenantDb.Functions.Secrets;

namespace TenantDb.Bench.Sections;

/// <summary>
/// The floor: what PostgreSQL itself needs for a tenant, the statements the create path sends, on the same pool server:
/// <c>CREATE ROLE</c> ×2 (owner, login with a SCRAM verifier) in one command, <c>CREATE DATABASE … TEMPLATE template0</c>,
/// <c>REVOKE</c>/<c>GRANT CONNECT</c>. The verifiers are computed before the timer starts (PostgreSQL's work only).
/// </summary>
public sealed class RawFloor(BenchServer pool) : ILoadSection, IAsyncDisposable
{
    private readonly NpgsqlDataSource _source = NpgsqlDataSource.Create(pool.ConnectionString(maxPoolSize: 64));
    private string[] _verifiers = [];
    private int _round;

    public string Key => "raw_floor";
    public string Title => "raw floor (CREATE ROLE ×2 + CREATE DATABASE + REVOKE)";

    public async Task PrepareAsync(Load load)
    {
        _round++;
        _verifiers = [.. Enumerable.Range(0, load.Operations).Select(_ => ScramVerifier.Compute(PasswordGenerator.Generate(40)))];
        // Open as many connections as callers before the timer, as the allocator's pooled data sources are warm.
        var warm = await Task.WhenAll(Enumerable.Range(0, load.Callers).Select(_ => _source.OpenConnectionAsync().AsTask()));
        foreach (var conn in warm)
        {
            await conn.DisposeAsync();
        }
    }

    public Task<Samples> RunAsync(Load load) => Latency.SampleAsync(load, async i =>
    {
        var owner = $"raw{_round}_{i}_{Guid.NewGuid():N}"[..28];
        await using var conn = await _source.OpenConnectionAsync();
        await using (var roles = new NpgsqlCommand($"""
            CREATE ROLE "{owner}" NOLOGIN;
            CREATE ROLE "{owner}_a" LOGIN INHERIT CONNECTION LIMIT 20 PASSWORD '{_verifiers[i]}' IN ROLE "{owner}";
            """, conn))
        {
            await roles.ExecuteNonQueryAsync();
        }

        await using (var database = new NpgsqlCommand($"CREATE DATABASE \"{owner}\" OWNER \"{owner}\" TEMPLATE template0", conn))
        {
            await database.ExecuteNonQueryAsync();
        }

        await using var revoke = new NpgsqlCommand($"""
            REVOKE ALL ON DATABASE "{owner}" FROM PUBLIC;
            GRANT CONNECT, TEMPORARY ON DATABASE "{owner}" TO "{owner}";
            """, conn);
        await revoke.ExecuteNonQueryAsync();
        return true;
    });

    public ValueTask DisposeAsync() => _source.DisposeAsync();
}
