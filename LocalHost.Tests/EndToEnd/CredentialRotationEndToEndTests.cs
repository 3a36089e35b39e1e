using System.Diagnostics;
using System.Text.Json;
using Npgsql;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// Rotation with alternating logins and the claim's Idempotency-Key (issue 9, items 7 and 8), over real HTTP against
/// LocalHost serving the Functions app with the real Durable engine on Azurite, the real catalog and a real pool.
/// </summary>
[Trait("Category", Tier.EndToEnd)]
public sealed class CredentialRotationEndToEndTests
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(120);

    private sealed record Answer(int Status, JsonElement Body, string? CacheControl, string? RetryAfter, TimeSpan Took);

    private static async Task<Answer> SendAsync(AllocatorHost host, HttpMethod method, string path, string? idempotencyKey = null)
    {
        using var request = host.Request(method, path);
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }

        var watch = Stopwatch.StartNew();
        using var response = await host.Client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        using var doc = JsonDocument.Parse(string.IsNullOrWhiteSpace(text) ? "null" : text);
        return new Answer((int)response.StatusCode, doc.RootElement.Clone(), response.Headers.CacheControl?.ToString(),
            response.Headers.RetryAfter?.ToString(), watch.Elapsed);
    }

    /// <summary>Null when these credentials log in now; else the server's SQLSTATE.</summary>
    private static async Task<string?> LoginAsync(JsonElement credentials, string? password = null, string? user = null)
    {
        await using var conn = new NpgsqlConnection(TenantInvariants.ConnectionString(credentials, user: user, password: password));
        try
        {
            await conn.OpenAsync();
            return null;
        }
        catch (PostgresException e)
        {
            return e.SqlState;
        }
    }

    /// <summary>Allocates on an empty system (a pool is provisioned) and returns the claim path.</summary>
    private static async Task<(Guid Instance, string ClaimPath)> AllocateAsync(AllocatorHost host)
    {
        var instance = Guid.NewGuid();
        var (status, accepted) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate",
            body: new { instance_id = instance.ToString(), customer_id = Guid.NewGuid().ToString(), plan_tier = "standard" });
        Assert.Equal(202, status);
        var done = await host.WaitForOrchestrationAsync(accepted.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!, RunTimeout);
        Assert.Equal("Completed", done.GetProperty("runtimeStatus").GetString());
        var claimUrl = done.GetProperty("output").GetProperty("allocation").GetProperty("credentials").GetProperty("claim_url").GetString()!;
        return (instance, new Uri(claimUrl).PathAndQuery);
    }

    [Fact]
    [Trait("Issue9", "7")]
    [Trait("Issue9", "8")]
    public async Task Credentials_KeyedClaimRetriedParallelRotatesAndRotateDuringClaim_EveryAnswerBoundedAndEveryClaimedPasswordLogsIn()
    {
        // A generous task-hub bound: this test is about races, not stalls, and must not flake on a loaded machine.
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string> { ["Handoff__StorageTimeout"] = "00:00:40" });
        var (instance, claimPath) = await AllocateAsync(host);
        var rotatePath = $"/api/database/credentials/{instance}/rotate";

        // Item 8: a claim whose answer was lost is retried with the same key and gets the same password; no other claim does.
        var key = Guid.NewGuid().ToString();
        var first = await SendAsync(host, HttpMethod.Post, claimPath, key);
        var retried = await SendAsync(host, HttpMethod.Post, claimPath, key);
        var otherKey = await SendAsync(host, HttpMethod.Post, claimPath, Guid.NewGuid().ToString());
        var noKey = await SendAsync(host, HttpMethod.Post, claimPath);
        Assert.Equal((200, 200, 410, 410), (first.Status, retried.Status, otherKey.Status, noKey.Status));
        Assert.Equal("no-store", first.CacheControl);
        Assert.Equal("no-store", retried.CacheControl);
        Assert.Equal(first.Body.GetProperty("db_password").GetString(), retried.Body.GetProperty("db_password").GetString());
        Assert.Null(await LoginAsync(retried.Body));
        var loginA = first.Body.GetProperty("db_user").GetString()!;

        // Item 7: five rotations at once: 200 or 409, never a 500; the password claimed afterwards logs in, on the other login.
        var rotations = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => SendAsync(host, HttpMethod.Post, rotatePath)));
        Assert.All(rotations, r => Assert.Contains(r.Status, new[] { 200, 409 }));
        Assert.Contains(rotations, r => r.Status == 200);
        Assert.All(rotations.Where(r => r.Status == 409), r => Assert.Equal("urn:tenantdb:problem:rotation-in-progress", r.Body.GetProperty("type").GetString()));
        Assert.Null(await LoginAsync(first.Body)); // the login in use still works before the claim
        var rotated = await SendAsync(host, HttpMethod.Post, claimPath);
        Assert.Equal(200, rotated.Status);
        Assert.Equal("no-store", rotated.CacheControl);
        Assert.NotEqual(loginA, rotated.Body.GetProperty("db_user").GetString());
        Assert.Null(await LoginAsync(rotated.Body));
        Assert.Equal("28000", await LoginAsync(first.Body)); // claimed: the old login is refused
        var (_, where) = await host.SendAsync(HttpMethod.Get, $"/api/database/allocations/{instance}");
        Assert.Equal(rotated.Body.GetProperty("db_user").GetString(), where.GetProperty("db_user").GetString());

        // A rotation racing a claim: each bounded; a password a claim hands out logs in, and the rotation's own is claimable.
        for (var round = 0; round < 3; round++)
        {
            var both = await Task.WhenAll(SendAsync(host, HttpMethod.Post, rotatePath), SendAsync(host, HttpMethod.Post, claimPath));
            var (rotate, claim) = (both[0], both[1]);
            Assert.Equal(200, rotate.Status);
            Assert.Contains(claim.Status, new[] { 200, 410, 503 });
            if (claim.Status == 200)
            {
                Assert.Null(await LoginAsync(claim.Body));
            }

            var after = await SendAsync(host, HttpMethod.Post, claimPath);
            Assert.Contains(after.Status, new[] { 200, 410 });
            var held = after.Status == 200 ? after : claim;
            Assert.Equal(200, held.Status); // the rotation's password was claimed by one of the two
            Assert.Null(await LoginAsync(held.Body));
            Assert.True(rotate.Took < TimeSpan.FromSeconds(50) && claim.Took < TimeSpan.FromSeconds(50));
        }

        var log = await File.ReadAllTextAsync(host.LogFile);
        Assert.DoesNotContain(first.Body.GetProperty("db_password").GetString()!, log);
        Assert.DoesNotContain(key, log);
    }

    [Fact]
    [Trait("Issue9", "7")]
    [Trait("Issue9", "8")]
    public async Task Rotate_WhileTheTaskHubStalls_503WithinItsBoundAndTheOldPasswordWorks_ThenInlineRotationIsNoStoreAndLogsIn()
    {
        await TestEnvironment.EnsureAzuriteAsync();
        await using var proxy = StallingProxy.Start(10000, 10001, 10002);
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string>
        {
            ["AzureWebJobsStorage"] = proxy.ConnectionString,
            ["Handoff__StorageTimeout"] = "00:00:05",
            ["Allocation__InlinePassword"] = "true",
        });
        var (instance, claimPath) = await AllocateAsync(host);
        var rotatePath = $"/api/database/credentials/{instance}/rotate";
        var initial = await SendAsync(host, HttpMethod.Post, claimPath);
        Assert.Equal(200, initial.Status);

        proxy.Stall();
        var stalled = await SendAsync(host, HttpMethod.Post, rotatePath);

        Assert.Equal(503, stalled.Status);
        Assert.Equal("urn:tenantdb:problem:rotation-unavailable", stalled.Body.GetProperty("type").GetString());
        Assert.NotNull(stalled.RetryAfter);
        Assert.True(stalled.Took < TimeSpan.FromSeconds(20), $"rotation answered after {stalled.Took}");
        Assert.False(stalled.Body.TryGetProperty("db_password", out _));
        Assert.Null(await LoginAsync(initial.Body));

        proxy.Resume();
        Answer? inline = null;
        for (var attempt = 0; attempt < 10 && inline?.Status != 200; attempt++)
        {
            inline = await SendAsync(host, HttpMethod.Post, rotatePath);
            Assert.Contains(inline.Status, new[] { 200, 503 });
            if (inline.Status != 200)
            {
                await Task.Delay(TimeSpan.FromSeconds(3));
            }
        }

        Assert.Equal(200, inline!.Status);
        Assert.Equal("no-store", inline.CacheControl);
        var password = inline.Body.GetProperty("db_password").GetString()!;
        var user = inline.Body.GetProperty("db_user").GetString()!;
        Assert.Null(await LoginAsync(initial.Body, password, user));
        Assert.Null(await LoginAsync(initial.Body)); // unclaimed yet: the login in use still works
        var claimed = await SendAsync(host, HttpMethod.Post, claimPath);
        Assert.Equal(200, claimed.Status);
        Assert.Equal((password, user), (claimed.Body.GetProperty("db_password").GetString(), claimed.Body.GetProperty("db_user").GetString()));
        Assert.Null(await LoginAsync(claimed.Body));
    }
}
