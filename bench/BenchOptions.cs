using System.Globalization;

namespace TenantDb.Bench;

/// <summary>The command line: every argument is optional; the defaults are the full benchmark (≤ 15 minutes on 2 cores).</summary>
public sealed record BenchOptions(IReadOnlyList<Load> Loads, IReadOnlySet<string> Only, int Pools, int Tenants, int PlacementCalls,
    int ProvisioningRuns, string Output, bool Quick)
{
    public static readonly string[] Sections = ["raw", "inproc", "http", "placement", "provisioning", "ttfa", "lifecycle"];

    public bool Runs(string section) => Only.Contains(section);

    /// <param name="args">
    /// <c>--quick</c> (small counts, to develop), <c>--only a,b</c> (of <see cref="Sections"/>), <c>--pools N</c>,
    /// <c>--tenants N</c>, <c>--out FILE</c> (default <c>bench/results/latest.json</c> in the repository).
    /// </param>
    public static BenchOptions Parse(string[] args)
    {
        var quick = args.Contains("--quick");
        string? Value(string name)
        {
            var at = Array.IndexOf(args, name);
            return at >= 0 && at + 1 < args.Length ? args[at + 1] : null;
        }

        int Number(string name, int fallback) => Value(name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
        var only = Value("--only") is { } list ? list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : Sections;
        if (only.Except(Sections).FirstOrDefault() is { } unknown)
        {
            throw new ArgumentException($"unknown section '{unknown}'; sections: {string.Join(", ", Sections)}");
        }

        Load[] loads = quick
            ? [new("sequential", 1, 8, 2), new("8 callers", 8, 16, 2), new("32 callers", 32, 32, 1)]
            : [new("sequential", 1, 40, 8), new("8 callers", 8, 96, 4), new("32 callers", 32, 128, 2)];
        return new BenchOptions(loads, only.ToHashSet(), Number("--pools", quick ? 1_000 : 10_000), Number("--tenants", quick ? 100_000 : 1_000_000),
            Number("--calls", quick ? 200 : 1_000), Number("--provisioning-runs", quick ? 1 : 3), Value("--out") ?? DefaultOutput(), quick);
    }

    private static string DefaultOutput()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Functions.sln")))
            {
                return Path.Combine(directory.FullName, "bench", "results", "latest.json");
            }
        }

        return Path.Combine(Environment.CurrentDirectory, "bench", "results", "latest.json");
    }
}
