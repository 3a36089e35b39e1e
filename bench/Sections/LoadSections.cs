namespace TenantDb.Bench.Sections;

/// <summary>
/// The raw floor and the four allocate paths (in process and over HTTP, create path and warm stock), level by level: at each
/// load every section runs in turn on the same pool server, so each ratio compares figures taken minutes apart at most.
/// </summary>
public static class LoadSections
{
    public static async Task RunAsync(Servers servers, BenchOptions options, Report report)
    {
        var stock = Math.Min(WarmStock.MaxPerPool, options.Loads.Max(l => l.Round.Operations));
        var raw = new RawFloor(servers.Pool);
        List<ILoadSection> sections = [raw];
        try
        {
            if (options.Runs("inproc"))
            {
                sections.Add(await InProcessAllocate.StartAsync(servers, warm: false, stock));
                sections.Add(await InProcessAllocate.StartAsync(servers, warm: true, stock));
            }

            if (options.Runs("http"))
            {
                var create = await HttpAllocate.StartAsync(servers, warm: false, stock);
                sections.Add(create);
                sections.Add(await HttpAllocate.StartAsync(servers, warm: true, stock));
                sections.Add(await HttpAllocate.StartAsync(servers, warm: true, stock, inline: true));
                sections.Add(new HttpFloor(create.Host));
            }

            var results = new Dictionary<(string, string), LatencyResult>();
            foreach (var load in options.Loads)
            {
                var samples = sections.ToDictionary(s => s.Key, _ => new List<Samples>());
                for (var round = 0; round < load.Rounds; round++)
                {
                    foreach (var section in sections)
                    {
                        await section.PrepareAsync(load.Round);
                        samples[section.Key].Add(await section.RunAsync(load.Round));
                    }
                }

                foreach (var section in sections)
                {
                    var result = Samples.Combine(samples[section.Key]).Result;
                    results[(section.Key, load.Name)] = result;
                    Console.Error.WriteLine($"bench: {section.Title}, {load.Name}: p50 {result.P50:0.0} ms, p99 {result.P99:0.0} ms, {result.PerSecond:0.0}/s, {result.Failures} failed");
                }
            }

            foreach (var section in sections)
            {
                foreach (var load in options.Loads)
                {
                    var rawResult = results[(raw.Key, load.Name)];
                    report.Add(section.Title, section.Key, load, results[(section.Key, load.Name)], rawResult, GoalFor(section.Key, load, results[(section.Key, load.Name)], rawResult));
                }
            }

            report.Note("Ratios are to the raw floor at the same load in this run (p50 × raw: lower is faster; ops/s × raw: higher is more). "
                + "p50 goals are judged single-caller (sequential); throughput goals at 32 callers. Each level runs in rounds, the sections taking turns "
                + "round by round on the same pool server; ops/s = operations / the summed wall time of its rounds. Allocate sections keep their databases.");
            if (options.Runs("inproc") || options.Runs("http"))
            {
                report.Note($"Warm stock: in process, Pools:WarmStock = {stock} and WarmStockService.ReplenishAsync fills it before each round (untimed), so every "
                    + $"measured allocation claims from stock; over HTTP, Pools__WarmStock = {stock}, the app's background replenisher refills it and each "
                    + "round starts once GET database/admin/pools shows a round's worth of warm_stock (it keeps refilling during the round). "
                    + "The inline-password row is the same warm stock with Allocation:InlinePassword=true: no credential handoff deposited in the "
                    + "task hub on the request path; the difference is what the deposit costs.");
            }
        }
        finally
        {
            foreach (var section in sections)
            {
                if (section is IAsyncDisposable disposable)
                {
                    await disposable.DisposeAsync();
                }
            }
        }
    }

    private static Goal? GoalFor(string key, Load load, LatencyResult? result, LatencyResult? raw)
    {
        var sequential = load.Callers == 1;
        var at32 = load.Callers == 32;
        double? p50 = result is null || raw is null ? null : result.P50 / raw.P50;
        double? rate = result is null || raw is null ? null : result.PerSecond / raw.PerSecond;
        return (key, sequential, at32) switch
        {
            ("allocate_in_process_warm_stock", true, _) => new Goal("p50 ≤ 0.25× raw", Judge(p50, 0.25, atMost: true)),
            ("allocate_http_warm_stock", true, _) => new Goal("p50 ≤ 0.5× raw", Judge(p50, 0.5, atMost: true)),
            ("allocate_in_process_create" or "allocate_http_create", true, _) => new Goal("p50 ≤ 1.15× raw", Judge(p50, 1.15, atMost: true)),
            ("allocate_in_process_warm_stock" or "allocate_http_warm_stock", _, true) => new Goal("ops/s ≥ 1.0× raw", Judge(rate, 1.0, atMost: false)),
            ("allocate_in_process_create" or "allocate_http_create", _, true) => new Goal("ops/s ≥ 0.8× raw", Judge(rate, 0.8, atMost: false)),
            _ => null,
        };
    }

    private static bool? Judge(double? ratio, double bound, bool atMost) => ratio is not { } r ? null : atMost ? r <= bound : r >= bound;
}
