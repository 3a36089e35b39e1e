using System.Text.Json;
using Npgsql;
using TenantDb.Functions.Secrets;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// Rotation of the secrets key on the running allocator (issue 9, item 9): pools made by the process driver and handoffs
/// waiting in the real Durable entities survive a new current key; the operator's re-wrap leaves no old ciphertext in the
/// catalog; with the old key gone every pool is still healthy. No key in any response or log line.
/// </summary>
[Trait("Category", Tier.EndToEnd)]
public sealed class KeyRotationEndToEndTests
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(120);

    private static object Allocation(Guid instance) =>
        new { instance_id = instance.ToString(), customer_id = Guid.NewGuid().ToString(), plan_tier = "standard" };

    private static async Task<KeyValuePair<Guid, JsonElement>> ClaimAndConnectAsync(AllocatorHost host, string claimUrl)
    {
        // As the instance-service does: a 503 (a deposit queued behind the restart) is retried after a pause, a bounded number of times.
        var (status, credentials) = await host.SendAsync(HttpMethod.Post, new Uri(claimUrl).PathAndQuery);
        for (var retry = 0; status == 503 && retry < 6; retry++)
        {
            await Task.Delay(TimeSpan.FromSeconds(10));
            (status, credentials) = await host.SendAsync(HttpMethod.Post, new Uri(claimUrl).PathAndQuery);
        }

        Assert.True(status == 200, $"claim answered {status}: {credentials.GetRawText()}");
        await using var conn = new NpgsqlConnection(TenantInvariants.ConnectionString(credentials));
        await conn.OpenAsync();
        return new(Guid.Parse(new Uri(claimUrl).Segments[^2].TrimEnd('/')), credentials);
    }

    private static async Task AssertEveryPoolHealthyAsync(AllocatorHost host)
    {
        var (_, list) = await host.SendAsync(HttpMethod.Get, "/api/database/admin/pools", AllocatorHost.MasterKey);
        // Pools in service: the headroom rule may be provisioning the next one meanwhile (its health check answers 409).
        var pools = list.GetProperty("pools").EnumerateArray()
            .Where(p => p.GetProperty("status").GetString() is "active" or "full").ToList();
        Assert.NotEmpty(pools);
        foreach (var pool in pools)
        {
            var (status, report) = await host.SendAsync(HttpMethod.Post, $"/api/database/admin/pools/{pool.GetProperty("id").GetInt64()}/health-check",
                AllocatorHost.MasterKey);
            Assert.Equal(200, status);
            Assert.Equal("healthy", report.GetProperty("health_status").GetString());
        }
    }

    private static async Task<long> CountNotUnderAsync(AllocatorHost host, string keyId)
    {
        await using var conn = new NpgsqlConnection(host.CatalogConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT count(*) FROM db_servers WHERE admin_password_encrypted NOT LIKE @prefix", conn);
        cmd.Parameters.AddWithValue("prefix", $"v2:{keyId}:%");
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    [Fact]
    [Trait("Issue9", "9")]
    public async Task RotateSecretsKey_PoolsHealthyPendingHandoffsClaimable_RewrapThenOldKeyRemoved()
    {
        // The sweep (which also re-wraps) stays out of the way: the operator's re-wrap is what this test measures.
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string> { ["Sweep__Schedule"] = "0 0 3 1 1 *" });
        var oldKey = host["Secrets__Key"]!;
        var newKey = SecretProtector.GenerateKey();
        var responses = new List<string>();

        // A pool made by the process driver (its admin password encrypted under the old key) and three unclaimed handoffs.
        var (status, accepted) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", body: Allocation(Guid.NewGuid()));
        Assert.Equal(202, status);
        var done = await host.WaitForOrchestrationAsync(accepted.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!, RunTimeout);
        Assert.Equal("Completed", done.GetProperty("runtimeStatus").GetString());
        var claimUrls = new List<string> { done.GetProperty("output").GetProperty("allocation").GetProperty("credentials").GetProperty("claim_url").GetString()! };
        for (var i = 0; i < 2; i++)
        {
            var (placed, body) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", body: Allocation(Guid.NewGuid()));
            Assert.Equal(200, placed);
            responses.Add(body.GetRawText());
            claimUrls.Add(body.GetProperty("credentials").GetProperty("claim_url").GetString()!);
        }

        // Rotate: a new current key, the old one kept for decryption.
        await host.KillAsync();
        host["Secrets__Keys__k2"] = newKey;
        host["Secrets__CurrentKeyId"] = "k2";
        await host.StartProcessAsync();

        await AssertEveryPoolHealthyAsync(host);
        var claimed = new Dictionary<Guid, JsonElement>();
        foreach (var claimUrl in claimUrls)
        {
            var (instance, credentials) = await ClaimAndConnectAsync(host, claimUrl);
            claimed.Add(instance, credentials);
        }

        var (madeAfter, after) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", body: Allocation(Guid.NewGuid()));
        Assert.Equal(200, madeAfter);
        Assert.Equal(1, await CountNotUnderAsync(host, "k2"));

        var (rewrapStatus, summary) = await host.SendAsync(HttpMethod.Post, "/api/database/admin/secrets/rewrap", AllocatorHost.MasterKey);
        var (functionKeyStatus, _) = await host.SendAsync(HttpMethod.Post, "/api/database/admin/secrets/rewrap", AllocatorHost.FunctionKey);
        responses.Add(summary.GetRawText());

        Assert.Equal(200, rewrapStatus);
        Assert.Equal(401, functionKeyStatus);
        Assert.Equal("k2", summary.GetProperty("current_key_id").GetString());
        Assert.Equal(1, summary.GetProperty("rewrapped").GetInt32());
        Assert.Equal(0, summary.GetProperty("remaining").GetInt32());
        Assert.Equal(0, await CountNotUnderAsync(host, "k2"));

        // The old key removed: pools healthy, a handoff made under the new key still claimable.
        await host.KillAsync();
        host["Secrets__Key"] = null;
        await host.StartProcessAsync();

        await AssertEveryPoolHealthyAsync(host);
        var (lastInstance, lastCredentials) = await ClaimAndConnectAsync(host, after.GetProperty("credentials").GetProperty("claim_url").GetString()!);
        claimed.Add(lastInstance, lastCredentials);

        var log = await File.ReadAllTextAsync(host.LogFile);
        Assert.False(log.Contains(oldKey, StringComparison.Ordinal) || log.Contains(newKey, StringComparison.Ordinal), "a secrets key reached the log");
        Assert.DoesNotContain(responses, r => r.Contains(oldKey, StringComparison.Ordinal) || r.Contains(newKey, StringComparison.Ordinal));
        (await TenantInvariants.CheckAsync(host, claimed)).AssertSurvived("secrets key rotated while handoffs are pending");
    }
}
