using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using TenantDb.Bench;
using TenantDb.Bench.Sections;

// The benchmark of issue 13: every figure beside the raw floor measured in the same run on the same servers, the goal of
// issue 13 item 3 next to it. A markdown table on stdout, every section and its ratios in bench/results/latest.json.
// Usage: dotnet run --project bench -c Release [-- --quick] [--only raw,inproc,http,placement,provisioning,ttfa] [--out FILE]
var options = BenchOptions.Parse(args);
var clock = Stopwatch.StartNew();
var started = DateTimeOffset.UtcNow;
var report = new Report();
Console.Error.WriteLine($"bench: loads {string.Join(", ", options.Loads.Select(l => $"{l.Name} ({l.Operations} ops)"))}; sections {string.Join(",", options.Only)}");

await using (var servers = await Servers.StartAsync())
{
    if (options.Runs("raw") || options.Runs("inproc") || options.Runs("http"))
    {
        await LoadSections.RunAsync(servers, options, report);
    }

    if (options.Runs("placement"))
    {
        await PlacementAtScale.RunAsync(servers, options, report);
    }

    if (options.Runs("provisioning"))
    {
        await Provisioning.RunAsync(servers, options, report);
    }

    if (options.Runs("ttfa"))
    {
        await TimeToFirstAllocation.RunAsync(servers, options, report);
    }
}

var run = new JsonObject
{
    ["started"] = started.ToString("O", CultureInfo.InvariantCulture),
    ["duration_s"] = Math.Round(clock.Elapsed.TotalSeconds, 1),
    ["processors"] = Environment.ProcessorCount,
    ["os"] = System.Runtime.InteropServices.RuntimeInformation.OSDescription,
    ["args"] = string.Join(' ', args),
    ["loads"] = new JsonArray(options.Loads.Select(l => (JsonNode)new JsonObject { ["name"] = l.Name, ["callers"] = l.Callers, ["operations"] = l.Operations }).ToArray()),
};
Console.WriteLine(report.Markdown());
Directory.CreateDirectory(Path.GetDirectoryName(options.Output)!);
await File.WriteAllTextAsync(options.Output, report.Json(run) + "\n");
Console.Error.WriteLine($"bench: {clock.Elapsed.TotalMinutes:0.0} min; results: {options.Output}");
