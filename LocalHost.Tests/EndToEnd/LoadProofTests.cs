using System.Collections.Concurrent;
using System.Text.Json;
using Xunit.Abstractions;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// Issue 11, load: the platform's instance-service hammering the real app over HTTP (LocalHost as a child process, the
/// real Durable engine on Azurite, four pool servers by the process driver). Every instance asks twice, in a shuffled
/// order, 64 at a time; the allocator must make exactly one database per instance, lose no password, answer no 5xx, and
/// keep every pool's counter equal to its live rows, then release them all just as cleanly.
/// </summary>
[Trait("Category", Tier.EndToEnd)]
public sealed class LoadProofTests(ITestOutputHelper output)
{
    private const int Instances = 250;
    private const int Pools = 4;
    private const int AllocateConcurrency = 64;
    private const int ReleaseConcurrency = 32;
    private const string Live = "('creating', 'ready', 'released')";

    [Fact]
    public async Task Load_EveryInstanceTwiceAt64_OneDatabaseEachNoLossCountersRightThenAllReleased()
    {
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string>
        {
            ["Pools__Shared__MaxInstances"] = "70",
            // A duplicate waits for the first request of its instance instead of answering "in progress".
            ["Allocation__DuplicateWait"] = "00:02:00",
        });
        await host.ProvisionSharedPoolsAsync(Pools);

        var customers = Enumerable.Range(0, Instances).ToDictionary(_ => Guid.NewGuid(), _ => Guid.NewGuid());
        var requests = customers.Keys.Concat(customers.Keys).OrderBy(_ => Random.Shared.Next()).ToList();
        var statuses = new ConcurrentBag<int>();
        var claimPaths = new ConcurrentDictionary<Guid, string>();
        var waitingRuns = new ConcurrentDictionary<Guid, string>();
        var serverErrorBodies = new ConcurrentBag<string>();
        var handedTwice = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await Parallel.ForEachAsync(requests, new ParallelOptions { MaxDegreeOfParallelism = AllocateConcurrency }, async (instance, _) =>
        {
            var (status, body) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate",
                body: new { instance_id = instance.ToString(), customer_id = customers[instance].ToString(), plan_tier = "standard" });
            statuses.Add(status);
            if (status >= 500)
            {
                serverErrorBodies.Add($"{status} {body}");
            }

            if (status == 202 && body.TryGetProperty("orchestration", out var run))
            {
                // An allocation that waits (for room, or after a pool failed it mid-way): its claim URL is in the run's output.
                waitingRuns.TryAdd(instance, run.GetProperty("status_query_get_uri").GetString()!);
            }

            if (status == 200 && body.TryGetProperty("credentials", out var credentials)
                && !claimPaths.TryAdd(instance, new Uri(credentials.GetProperty("claim_url").GetString()!).PathAndQuery))
            {
                Interlocked.Increment(ref handedTwice);
            }
        });

        var allocateSeconds = clock.Elapsed.TotalSeconds;
        var serverErrors = statuses.Count(s => s >= 500);
        Assert.True(serverErrors == 0, $"{serverErrors} answers ≥ 500: {string.Join("\n", serverErrorBodies.Take(10))}\nthe log's warnings:\n{host.Warnings()}");
        Assert.All(statuses, s => Assert.True(s is 200 or 202, $"unexpected {s}"));
        foreach (var instance in customers.Keys)
        {
            await WaitReadyAsync(host, instance);
        }

        var databases = await host.ScalarAsync("SELECT count(*) FROM tenant_databases WHERE status = 'ready'");
        var duplicates = await host.ScalarAsync($"SELECT count(*) - count(DISTINCT instance_id) FROM tenant_databases WHERE status IN {Live}");
        var degraded = await host.ScalarAsync("SELECT count(*) FROM db_servers WHERE status <> 'deleted' AND health_status IN ('degraded', 'unhealthy')");
        Assert.Equal(Instances, databases);
        Assert.Equal(0, duplicates);
        Assert.Equal(0, degraded);
        Assert.Equal(0, handedTwice);
        Assert.Equal(0, await CounterDriftAsync(host));

        // An instance none of whose answers was a 200 with credentials was placed by its waiting run, as the platform's client
        // sees it: the claim URL is in that run's output.
        var viaWaitingRun = 0;
        foreach (var (instance, statusUri) in waitingRuns.Where(w => !claimPaths.ContainsKey(w.Key)))
        {
            var done = await host.WaitForOrchestrationAsync(statusUri, TimeSpan.FromSeconds(60));
            if (done.TryGetProperty("output", out var output) && output.ValueKind == JsonValueKind.Object
                && output.TryGetProperty("allocation", out var placed) && placed.ValueKind == JsonValueKind.Object
                && placed.TryGetProperty("credentials", out var credentials)
                && claimPaths.TryAdd(instance, new Uri(credentials.GetProperty("claim_url").GetString()!).PathAndQuery))
            {
                viaWaitingRun++;
            }
        }

        // Every password handed over once, and every database reachable with it.
        var lost = Instances - claimPaths.Count;
        var passwords = new ConcurrentDictionary<Guid, JsonElement>();
        var refusedClaims = new ConcurrentBag<string>();
        await Parallel.ForEachAsync(claimPaths, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (claim, _) =>
        {
            var (status, credentials) = await host.SendAsync(HttpMethod.Post, claim.Value);
            if (status == 200)
            {
                passwords[claim.Key] = credentials;
            }
            else
            {
                refusedClaims.Add($"{status} {(credentials.ValueKind == JsonValueKind.Object && credentials.TryGetProperty("type", out var type) ? type.GetString() : "")}");
            }
        });
        lost += claimPaths.Count - passwords.Count;
        Assert.True(lost == 0, $"{lost} passwords lost: {Instances - claimPaths.Count} instances never answered 200 with a claim URL "
            + $"(allocate answers: {string.Join(", ", statuses.GroupBy(s => s).Select(g => $"{g.Key}×{g.Count()}"))}); claims refused: "
            + string.Join(", ", refusedClaims.GroupBy(c => c).Select(g => $"{g.Key}×{g.Count()}")));
        var unreachable = 0;
        foreach (var credentials in passwords.Values)
        {
            unreachable += await TenantInvariants.CanLogInAsync(credentials) ? 0 : 1;
        }

        Assert.Equal(0, unreachable);

        var releaseStatuses = new ConcurrentBag<int>();
        await Parallel.ForEachAsync(customers.Keys, new ParallelOptions { MaxDegreeOfParallelism = ReleaseConcurrency }, async (instance, _) =>
        {
            var (status, _) = await host.SendAsync(HttpMethod.Delete, $"/api/database/allocations/{instance}");
            releaseStatuses.Add(status);
        });
        Assert.All(releaseStatuses, s => Assert.Equal(200, s));
        var stillLogIn = 0;
        foreach (var credentials in passwords.Values)
        {
            stillLogIn += await TenantInvariants.CanLogInAsync(credentials) ? 1 : 0;
        }

        Assert.Equal(0, stillLogIn);
        Assert.Equal(Instances, await host.ScalarAsync("SELECT count(*) FROM tenant_databases WHERE status = 'released'"));
        var countersOk = await CounterDriftAsync(host) == 0;
        Assert.True(countersOk, "a pool's current_instances differs from its live rows after the releases");

        var summary = $"proof load: requests={requests.Count + releaseStatuses.Count} 5xx={serverErrors} duplicates={duplicates} lost={lost} " +
            $"counters_ok={countersOk.ToString().ToLowerInvariant()} pools={Pools} databases={databases} logins_refused_after_release={Instances - stillLogIn}/{Instances} " +
            $"placed_by_waiting_run={viaWaitingRun} allocate_seconds={allocateSeconds.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture)}";
        output.WriteLine(summary);
        ProofReport.Write(summary);
    }

    private static async Task WaitReadyAsync(AllocatorHost host, Guid instance)
    {
        var deadline = DateTimeOffset.UtcNow.AddMinutes(2);
        while (true)
        {
            var (status, body) = await host.SendAsync(HttpMethod.Get, $"/api/database/allocations/{instance}");
            if (status == 200 && body.GetProperty("database_status").GetString() == "ready")
            {
                return;
            }

            Assert.True(DateTimeOffset.UtcNow < deadline, $"instance {instance} not ready: {status} {body}");
            await Task.Delay(250);
        }
    }

    /// <summary>Pools whose <c>current_instances</c> differs from the live rows they hold.</summary>
    private static Task<long> CounterDriftAsync(AllocatorHost host) => host.ScalarAsync($"""
        SELECT count(*) FROM db_servers s
        WHERE s.status <> 'deleted'
          AND s.current_instances <> (SELECT count(*) FROM tenant_databases t WHERE t.db_server_id = s.id AND t.status IN {Live})
        """);
}
