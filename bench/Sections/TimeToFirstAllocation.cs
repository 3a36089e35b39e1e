using System.Globalization;
using System.Text.Json.Nodes;

namespace TenantDb.Bench.Sections;

/// <summary>
/// Time to first allocation for a tenant that arrives when every pool is full: through LocalHost (process-driver pools of
/// <see cref="PoolSize"/> tenants), the tenant allocates (again every 100 ms while it gets 202) and claims until the password
/// comes, timed from its first request. Without headroom (<c>Pools:MinFreeSlots</c> 0) and with it (<see cref="Headroom"/>).
/// Then steady growth with headroom: tenants arriving one by one at a steady pace, counted when their first answer was 202,
/// i.e. they waited on a new server (goal 0).
/// </summary>
public static class TimeToFirstAllocation
{
    private const int PoolSize = 5;
    private const int Headroom = 3;
    private const string Key = "time_to_first_allocation";
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan Patience = TimeSpan.FromMinutes(3);

    public static async Task RunAsync(Servers servers, BenchOptions options, Report report)
    {
        var rounds = options.Quick ? 1 : 3;
        var (without, provisioning) = await EveryPoolFullAsync(servers, "ttfa-none", minFreeSlots: 0, rounds);
        var (with, _) = await EveryPoolFullAsync(servers, "ttfa-headroom", minFreeSlots: Headroom, rounds);
        report.Add("time to first allocation, every pool full, no headroom", Key, "no_headroom", without, null, null, null,
            $"pools of {PoolSize}, Pools:MinFreeSlots 0; {rounds} rounds: fill every free slot, then one more tenant (202 → claimable)");
        report.Add("time to first allocation, every pool full, headroom", Key, "headroom", with, without.P50 > 0 ? with.P50 / without.P50 : null, null, null,
            $"Pools:MinFreeSlots {Headroom}; same rounds; p50 × is to the no-headroom p50");

        // Steady growth: the headroom gives Headroom arrivals of lead time; the pace leaves the provisioning run 1.5× what it
        // needed when the first pool was made.
        var interval = TimeSpan.FromMilliseconds(Math.Max(200, provisioning.TotalMilliseconds * 1.5 / Headroom));
        var tenants = options.Quick ? PoolSize * 2 : PoolSize * 4;
        var (waited, growth) = await SteadyGrowthAsync(servers, interval, tenants);
        report.Add("steady growth with headroom: tenants that waited on a new server", Key, "steady_growth", growth, null, null,
            new Goal($"0 waited (measured {waited} of {tenants})", waited == 0),
            $"{tenants} tenants, one every {interval.TotalMilliseconds:0} ms, pools of {PoolSize}, Pools:MinFreeSlots {Headroom}; "
            + "latency columns: each tenant's time to claimable");
        report.Detail(Key, "steady_growth_detail", new JsonObject
        {
            ["tenants"] = tenants, ["waited_on_new_server"] = waited, ["interval_ms"] = Math.Round(interval.TotalMilliseconds),
            ["first_pool_provisioning_ms"] = Math.Round(provisioning.TotalMilliseconds), ["pool_size"] = PoolSize, ["min_free_slots"] = Headroom,
        });
    }

    private static Dictionary<string, string> Settings(int minFreeSlots) => new()
    {
        ["Pools__Shared__MaxInstances"] = PoolSize.ToString(CultureInfo.InvariantCulture),
        ["Pools__MinFreeSlots"] = minFreeSlots.ToString(CultureInfo.InvariantCulture),
    };

    private static async Task<(LatencyResult Result, TimeSpan FirstPool)> EveryPoolFullAsync(Servers servers, string name, int minFreeSlots, int rounds)
    {
        await using var host = await LocalHostProcess.StartAsync(servers, name, Settings(minFreeSlots));
        var (_, firstPool) = await host.ProvisionPoolAsync(Poll);
        var times = new List<double>();
        for (var round = 0; round < rounds; round++)
        {
            // Fill every free slot back to back (each gets its database at once), then the next tenant arrives.
            for (var free = await FreeSlotsAsync(host); free > 0; free = await FreeSlotsAsync(host))
            {
                for (var i = 0; i < free; i++)
                {
                    await host.AllocateUntilClaimableAsync(Guid.NewGuid(), Poll, Patience);
                }

                if (minFreeSlots > 0)
                {
                    break; // with headroom a new pool may turn active meanwhile: that is the point, the tenant meets it
                }
            }

            var (first, took) = await host.AllocateUntilClaimableAsync(Guid.NewGuid(), Poll, Patience);
            times.Add(took.TotalMilliseconds);
            Console.Error.WriteLine($"bench: {name} round {round + 1}: first answer {first}, claimable after {took.TotalMilliseconds:0} ms");
            await WaitWhileProvisioningAsync(host);
        }

        return (LatencyResult.Of(times, 0, TimeSpan.FromMilliseconds(times.Sum())), firstPool);
    }

    private static async Task<(int Waited, LatencyResult Result)> SteadyGrowthAsync(Servers servers, TimeSpan interval, int tenants)
    {
        await using var host = await LocalHostProcess.StartAsync(servers, "growth", Settings(Headroom));
        await host.ProvisionPoolAsync(Poll);
        var arrivals = new List<Task<(int FirstStatus, TimeSpan UntilClaimable)>>();
        var start = DateTimeOffset.UtcNow;
        for (var i = 0; i < tenants; i++)
        {
            var due = start + interval * i;
            if (due > DateTimeOffset.UtcNow)
            {
                await Task.Delay(due - DateTimeOffset.UtcNow);
            }

            arrivals.Add(host.AllocateUntilClaimableAsync(Guid.NewGuid(), Poll, Patience));
        }

        var answers = await Task.WhenAll(arrivals);
        var waited = answers.Count(a => a.FirstStatus != 200);
        Console.Error.WriteLine($"bench: steady growth: {waited} of {tenants} waited on a new server (one every {interval.TotalMilliseconds:0} ms)");
        return (waited, LatencyResult.Of([.. answers.Select(a => a.UntilClaimable.TotalMilliseconds)], 0, DateTimeOffset.UtcNow - start));
    }

    private static async Task<int> FreeSlotsAsync(LocalHostProcess host) => (await host.PoolsAsync())
        .Where(p => p.GetProperty("server_type").GetString() == "shared" && p.GetProperty("status").GetString() == "active")
        .Sum(p => p.GetProperty("max_instances").GetInt32() - p.GetProperty("current_instances").GetInt32());

    private static async Task WaitWhileProvisioningAsync(LocalHostProcess host)
    {
        var deadline = DateTimeOffset.UtcNow + Patience;
        while ((await host.PoolsAsync()).Any(p => p.GetProperty("status").GetString() is "provisioning" or "initializing") && DateTimeOffset.UtcNow < deadline)
        {
            await Task.Delay(Poll);
        }
    }
}
