using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using TenantDb.Bench;
using TenantDb.Bench.Sections;

// The benchmark of issue 13: every figure beside the raw floor measured in the same run on the same servers, the goal of
// issue 13 item 3 next to it. A markdown table on stdout, every section and its ratios in bench/results/latest.json.
// Usage: dotnet run --project bench -c Release [-- --quick] [--only raw,inproc,http,placement,provisioning,ttfa,lifecycle] [--out FILE]
var options = BenchOptions.Parse(args);
var clock = Stopwatch.StartNew();
var started = DateTimeOffset.UtcNow;
var report = new Report();
Console.Error.WriteLine($"bench: loads {string.Join(", ", options.Loads.Select(l => $"{l.Name} ({l.Operations} ops)"))}; sections {string.Join(",", options.Only)}");

await using (var servers = await Servers.StartAsync())
{
    // A section that fails (a server that will not start, a task hub that stalls) is reported as failed; the others still run.
    async Task SectionAsync(string name, Func<Task> run)
    {
        if (!options.Runs(name) && !(name == "load" && (options.Runs("raw") || options.Runs("inproc") || options.Runs("http"))))
        {
            return;
        }

        try
        {
            await run();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Console.Error.WriteLine($"bench: section {name} failed: {e}");
            report.Failed(name, $"{e.GetType().Name}: {e.Message.Split('\n')[0]}");
        }
    }

    await SectionAsync("load", () => LoadSections.RunAsync(servers, options, report));
    await SectionAsync("placement", () => PlacementAtScale.RunAsync(servers, options, report));
    await SectionAsync("provisioning", () => Provisioning.RunAsync(servers, options, report));
    await SectionAsync("ttfa", () => TimeToFirstAllocation.RunAsync(servers, options, report));
    await SectionAsync("lifecycle", () => Lifecycle.RunAsync(servers, options, report));

    // The results before the clean-up: deleting the pool server's thousands of databases takes a while on a busy disk.
    var run = new JsonObject
    {
        ["started"] = started.ToString("O", CultureInfo.InvariantCulture),
        ["duration_s"] = Math.Round(clock.Elapsed.TotalSeconds, 1),
        ["processors"] = Environment.ProcessorCount,
        ["load_average"] = LoadAverage(),
        ["os"] = System.Runtime.InteropServices.RuntimeInformation.OSDescription,
        ["args"] = string.Join(' ', args),
        ["loads"] = new JsonArray(options.Loads.Select(l => (JsonNode)new JsonObject
        {
            ["name"] = l.Name, ["callers"] = l.Callers, ["operations"] = l.Operations, ["rounds"] = l.Rounds,
        }).ToArray()),
    };
    Console.WriteLine(report.Markdown());
    Directory.CreateDirectory(Path.GetDirectoryName(options.Output)!);
    await File.WriteAllTextAsync(options.Output, report.Json(run) + "\n");
    Console.Error.WriteLine($"bench: {clock.Elapsed.TotalMinutes:0.0} min; results: {options.Output}; removing the run's servers");
}

Console.Error.WriteLine($"bench: done in {clock.Elapsed.TotalMinutes:0.0} min");

// The machine's 1-minute load average at the end (Linux), to read absolute figures against: the ratios are the result.
static string? LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : null;
