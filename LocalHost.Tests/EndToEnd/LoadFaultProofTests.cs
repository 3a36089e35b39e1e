using System.Collections.Concurrent;
using System.Text.Json;
using Xunit.Abstractions;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// Issue 11, faults under load: the instance-service keeps allocating while a pool server dies, the catalog restarts, or the
/// allocator is SIGKILLed. Nothing may answer a 5xx other than 503 with <c>Retry-After</c>, every instance ends with one
/// database and a password that logs in, and the catalog and the servers agree afterwards (<see cref="TenantInvariants"/>).
/// </summary>
[Trait("Category", Tier.EndToEnd)]
public sealed class LoadFaultProofTests(ITestOutputHelper output)
{
    private const int Instances = 60;
    private const int Concurrency = 8;
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(3);

    // The sweep and the cleanup run every few seconds, so abandoned and failed allocations are settled within the test.
    private static Dictionary<string, string> FastSweeps(params (string Key, string Value)[] more)
    {
        var settings = new Dictionary<string, string>
        {
            ["Pools__Shared__MaxInstances"] = "60",
            ["Pools__UnhealthyAfterFailures"] = "1",
            ["Sweep__Schedule"] = "*/5 * * * * *",
            ["Sweep__CleanupSchedule"] = "*/10 * * * * *",
            ["Allocation__StaleCreatingAfter"] = "00:00:30",
        };
        foreach (var (key, value) in more)
        {
            settings[key] = value;
        }

        return settings;
    }

    [Fact]
    public async Task PoolServerKilledMidLoad_InFlightCompensateLaterGoElsewhere_SweepMarksItUnhealthyThenHealthyWhenBack()
    {
        await using var host = await AllocatorHost.StartAsync(FastSweeps());
        await host.ProvisionSharedPoolsAsync(2);
        var client = new InstanceServiceClient(host);
        var customers = NewInstances();

        var load = RunLoadAsync(client, customers);
        await WhenReadyAtLeastAsync(host, 8);
        var (killedPool, killedDir) = await BusiestPoolAsync(host);
        await host.StopServerAsync(killedDir, immediate: true);
        var killedAt = DateTimeOffset.UtcNow;
        await load;

        // Every instance ends with a database on the pool still up; the killed pool is marked by the sweep.
        await Parallel.ForEachAsync(customers, new ParallelOptions { MaxDegreeOfParallelism = Concurrency },
            async (c, _) => await client.AllocateUntilReadyAsync(c.Key, c.Value, Patience));
        await WaitForAsync(host, $"SELECT count(*) FROM db_servers WHERE id = {killedPool} AND health_status = 'unhealthy'", "the sweep did not mark the killed pool unhealthy");
        // A reservation made after the kill on the dead pool cannot have finished: its row failed, its instance went elsewhere.
        var placedOnKilledAfterKill = await host.ScalarAsync(
            $"SELECT count(*) FROM tenant_databases WHERE db_server_id = {killedPool} AND status = 'ready' AND created_at > '{killedAt:O}'::timestamptz");
        Assert.Equal(0, placedOnKilledAfterKill);

        await host.StartServerAsync(killedDir);
        await WaitForAsync(host, $"SELECT count(*) FROM db_servers WHERE id = {killedPool} AND health_status = 'healthy'", "the restarted pool did not come back healthy");

        var claimed = await ClaimAllAsync(client, customers);
        AssertAnswers(client);
        output.WriteLine($"pool killed: answers {Summary(client)}");
        (await TenantInvariants.CheckAsync(host, claimed)).AssertSurvived("pool server killed mid-load");
    }

    [Fact]
    public async Task CatalogRestartedMidLoad_503WithRetryAfterMeanwhile_NothingHalfMade()
    {
        await using var host = await AllocatorHost.StartAsync(FastSweeps());
        await host.ProvisionSharedPoolsAsync(2);
        var client = new InstanceServiceClient(host);
        var customers = NewInstances();

        var load = RunLoadAsync(client, customers);
        await WhenReadyAtLeastAsync(host, 8);
        await host.StopServerAsync(host.CatalogDataDir, immediate: true);
        var down = DateTimeOffset.UtcNow;
        var duringOutage = new List<int>();
        while (DateTimeOffset.UtcNow - down < TimeSpan.FromSeconds(4))
        {
            duringOutage.Add(await client.AllocateOnceAsync(Guid.NewGuid(), Guid.NewGuid()));
            await Task.Delay(250);
        }

        await host.StartServerAsync(host.CatalogDataDir);
        await load;
        Assert.All(duringOutage, s => Assert.Equal(503, s));

        await Parallel.ForEachAsync(customers, new ParallelOptions { MaxDegreeOfParallelism = Concurrency },
            async (c, _) => await client.AllocateUntilReadyAsync(c.Key, c.Value, Patience));
        var claimed = await ClaimAllAsync(client, customers);
        AssertAnswers(client);
        output.WriteLine($"catalog restarted: {duringOutage.Count} requests during the outage; answers {Summary(client)}");
        // The instances asked about during the outage never got a row: their requests were refused before any work.
        Assert.Equal(Instances, await host.ScalarAsync("SELECT count(*) FROM tenant_databases WHERE status = 'ready'"));
        (await TenantInvariants.CheckAsync(host, claimed)).AssertSurvived("catalog restarted mid-load");
    }

    [Fact]
    public async Task AllocatorSigkilledMidAllocation_RestartedHostFinishesEveryInstanceOnceNothingStranded()
    {
        // The kill can land between an allocation turning ready and its deposit: that instance's claim answers "not yet" for
        // the deposit grace, then "rotate" (the client rotates). The grace is shortened so that fits in the test's patience.
        await using var host = await AllocatorHost.StartAsync(FastSweeps(("Handoff__DepositGrace", "00:00:30")));
        await host.ProvisionSharedPoolsAsync(2);
        var client = new InstanceServiceClient(host);
        var customers = NewInstances();

        var load = RunLoadAsync(client, customers);
        await WhenReadyAtLeastAsync(host, 8);
        await host.KillAsync();
        await load;
        var creatingAtKill = await host.ScalarAsync("SELECT count(*) FROM tenant_databases WHERE status = 'creating'");
        await host.StartProcessAsync();

        await Parallel.ForEachAsync(customers, new ParallelOptions { MaxDegreeOfParallelism = Concurrency },
            async (c, _) => await client.AllocateUntilReadyAsync(c.Key, c.Value, Patience));
        var claimed = await ClaimAllAsync(client, customers);
        AssertAnswers(client);
        output.WriteLine($"SIGKILL: {creatingAtKill} allocations mid-way at the kill; answers {Summary(client)}");
        Assert.Equal(Instances, await host.ScalarAsync("SELECT count(*) FROM tenant_databases WHERE status = 'ready'"));
        Assert.Equal(0, await host.ScalarAsync("SELECT count(*) - count(DISTINCT instance_id) FROM tenant_databases WHERE status IN ('creating', 'ready', 'released')"));
        (await TenantInvariants.CheckAsync(host, claimed)).AssertSurvived("allocator SIGKILLed mid-allocation");
    }

    [Fact]
    public async Task TaskHubStalledThenAllocatorSigkilled_AllocationAnswered_ClaimHandsTheFirstPasswordFromTheCatalogsCopy()
    {
        // The task hub stalls while the allocation makes the database and the host dies before anything reached it. The ready row
        // keeps the password sealed (DESIGN.md §5) and the allocation waits for no deposit: it answers 200 through the stall, and
        // after the restart the first claim deposits the copy and hands it over: no rotation, the first login works.
        await TestEnvironment.EnsureAzuriteAsync();
        await using var proxy = StallingProxy.Start(10000, 10001, 10002);
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string>
        {
            ["AzureWebJobsStorage"] = proxy.ConnectionString,
            ["Handoff__StorageTimeout"] = "00:00:05",
        });
        await host.ProvisionSharedPoolsAsync(1);
        var instance = Guid.NewGuid();
        proxy.Stall();
        var client = new InstanceServiceClient(host);
        var first = await client.AllocateOnceAsync(instance, Guid.NewGuid());
        Assert.True(first == 200, $"an allocate while the task hub stalls answered {first}");
        Assert.Equal(1, await host.ScalarAsync($"SELECT count(*) FROM tenant_databases WHERE instance_id = '{instance}' AND status = 'ready'"));
        await host.KillAsync();
        proxy.Cut();
        proxy.Resume();
        await host.StartProcessAsync();

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var credentials = await client.CredentialsAsync(instance, TimeSpan.FromMinutes(2));
        output.WriteLine($"lost handoff: credentials after {clock.Elapsed.TotalSeconds:0} s; answers {Summary(client)}");
        Assert.DoesNotContain(404, client.Statuses); // never told to rotate: the password was not lost
        Assert.Equal(0, await host.ScalarAsync($"SELECT count(*) FROM tenant_databases WHERE instance_id = '{instance}' AND rotation_id IS NOT NULL"));
        Assert.Equal(0, await host.ScalarAsync($"SELECT count(*) FROM tenant_databases WHERE instance_id = '{instance}' AND first_password_encrypted IS NOT NULL"));
        var (again, _) = await host.SendAsync(HttpMethod.Post, $"/api/database/credentials/{instance:D}/claim");
        Assert.Equal(410, again); // handed over once
        AssertAnswers(client);
        (await TenantInvariants.CheckAsync(host, new Dictionary<Guid, JsonElement> { [instance] = credentials }))
            .AssertSurvived("allocator SIGKILLed between ready and the handoff");
    }

    private static Dictionary<Guid, Guid> NewInstances() => Enumerable.Range(0, Instances).ToDictionary(_ => Guid.NewGuid(), _ => Guid.NewGuid());

    /// <summary>Each instance asked once, <see cref="Concurrency"/> at a time; what the fault does to them is recorded.</summary>
    private static Task RunLoadAsync(InstanceServiceClient client, Dictionary<Guid, Guid> customers) =>
        Parallel.ForEachAsync(customers, new ParallelOptions { MaxDegreeOfParallelism = Concurrency },
            async (c, _) => await client.AllocateOnceAsync(c.Key, c.Value));

    private static async Task<Dictionary<Guid, JsonElement>> ClaimAllAsync(InstanceServiceClient client, Dictionary<Guid, Guid> customers)
    {
        var claimed = new ConcurrentDictionary<Guid, JsonElement>();
        await Parallel.ForEachAsync(customers.Keys, new ParallelOptions { MaxDegreeOfParallelism = Concurrency },
            async (instance, _) => claimed[instance] = await client.CredentialsAsync(instance, Patience));
        return claimed.ToDictionary();
    }

    /// <summary>No answer but 200, 202, 404/410 on a claim, and 503 with Retry-After (0: a connection the fault broke).</summary>
    private static void AssertAnswers(InstanceServiceClient client)
    {
        Assert.DoesNotContain(client.Statuses, s => s >= 500 && s != 503);
        Assert.Equal(0, client.UnavailableWithoutRetryAfter);
    }

    private static string Summary(InstanceServiceClient client) =>
        string.Join(" ", client.Statuses.GroupBy(s => s).OrderBy(g => g.Key).Select(g => $"{g.Key}×{g.Count()}"));

    private static async Task WhenReadyAtLeastAsync(AllocatorHost host, int count) =>
        await WaitForAsync(host, $"SELECT CASE WHEN count(*) >= {count} THEN 1 ELSE 0 END FROM tenant_databases WHERE status = 'ready'",
            "the load made no databases");

    private static async Task<(long Id, string DataDir)> BusiestPoolAsync(AllocatorHost host)
    {
        var id = await host.ScalarAsync("""
            SELECT db_server_id FROM tenant_databases WHERE status IN ('creating', 'ready') GROUP BY db_server_id ORDER BY count(*) DESC LIMIT 1
            """);
        foreach (var dataDir in Directory.GetDirectories(host.PoolsRoot))
        {
            if (await host.ScalarAsync($"SELECT count(*) FROM db_servers WHERE id = {id} AND name = '{Path.GetFileName(dataDir)}'") == 1)
            {
                return (id, dataDir);
            }
        }

        throw new InvalidOperationException($"no data directory under {host.PoolsRoot} for pool {id}");
    }

    private static async Task WaitForAsync(AllocatorHost host, string sql, string failure)
    {
        var deadline = DateTimeOffset.UtcNow.AddMinutes(2);
        while (await host.ScalarAsync(sql) < 1)
        {
            Assert.True(DateTimeOffset.UtcNow < deadline, $"{failure}: {host.Tail()}");
            await Task.Delay(500);
        }
    }
}
