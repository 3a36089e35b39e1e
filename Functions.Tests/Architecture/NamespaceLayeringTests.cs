namespace TenantDb.Functions.Tests.Architecture;

/// <summary>
/// The app's areas depend one way (DESIGN §3, README "Layout"): the vocabulary at the bottom, the catalog on it, pool-server
/// access and the drivers, then the features, and the adapters (HTTP, timers, orchestrations) on top. A use against the
/// order, or a cycle, fails here with the file and symbol that made it.
/// </summary>
[Trait("Category", Tier.Unit)]
public sealed class NamespaceLayeringTests
{
    /// <summary>Bottom to top; an area may use areas of lower layers only (the same layer is not allowed either).</summary>
    public static readonly IReadOnlyList<string[]> Layers =
    [
        ["Domain", "Secrets", "Settings", "Telemetry"],
        ["Catalog"],
        ["Pools"],
        ["Drivers"],
        ["Provisioning", "Stock", "Usage"],
        ["Allocations", "Callbacks"],
        ["Backups"],
        ["Moves"],
        ["Handoff"],
        ["Administration"],
        ["Orchestrations", "Api", "Timers"],
        [NamespaceGraph.CompositionRoot],
    ];

    /// <summary>Areas held to fewer areas than their layer allows.</summary>
    private static readonly Dictionary<string, string[]> Only = new(StringComparer.Ordinal)
    {
        ["Domain"] = [],
        ["Secrets"] = [],
        ["Settings"] = [],
        ["Telemetry"] = [],
        ["Catalog"] = ["Domain"],
    };

    private static readonly Lazy<NamespaceGraph> App = new(() => NamespaceGraph.Read());

    [Fact]
    public void Functions_AreasUsedByEachOther_FormNoCycle()
    {
        var cycles = NamespaceGraph.Cycles(App.Value.Edges);

        Assert.True(cycles.Count == 0, "Namespace cycles:\n" + string.Join("\n", cycles.Select(c => Describe(App.Value, c))));
    }

    [Fact]
    public void Functions_EveryArea_UsesOnlyLowerLayers()
    {
        var violations = Violations(App.Value);

        Assert.True(violations.Count == 0, "Uses against the layering:\n" + string.Join("\n", violations));
    }

    [Fact]
    public void Functions_EveryArea_HasALayer()
    {
        var areas = App.Value.Uses.SelectMany(u => new[] { u.From, u.To }).Distinct(StringComparer.Ordinal);
        var placed = Layers.SelectMany(l => l).ToHashSet(StringComparer.Ordinal);

        Assert.DoesNotContain(areas, a => !placed.Contains(a));
        Assert.Contains(App.Value.Uses, u => u.From == "Catalog" && u.To == "Domain");
    }

    [Fact]
    public void Graph_CatalogUsingAnAllocationService_IsReportedAsCycleAndViolation()
    {
        // What a careless change would add: the catalog calling up into a feature, with a fully qualified name and no using.
        var graph = NamespaceGraph.Read(("Catalog/Careless.cs", """
            namespace TenantDb.Functions.Catalog;

            internal static class Careless
            {
                public static string Name(TenantDb.Functions.Allocations.AllocationService service) => service.ToString()!;
            }
            """));

        Assert.Contains(graph.Uses, u => u is { From: "Catalog", To: "Allocations", File: "Catalog/Careless.cs" });
        Assert.Contains(NamespaceGraph.Cycles(graph.Edges), c => c.Contains("Catalog") && c.Contains("Allocations"));
        Assert.Contains(Violations(graph), v => v.StartsWith("Catalog → Allocations", StringComparison.Ordinal));
    }

    [Fact]
    public void Graph_VarAndExtensionCalls_CountAsUses()
    {
        // No using line and no type name: the inferred type and the extension method still tie Pools to Allocations.
        var graph = NamespaceGraph.Read(("Pools/Hidden.cs", """
            namespace TenantDb.Functions.Pools;

            internal static class Hidden
            {
                public static object Make() { var options = Make2(); return options; }
                private static TenantDb.Functions.Allocations.AllocationOptions Make2() => new();
            }
            """));

        Assert.Contains(graph.Uses, u => u is { From: "Pools", To: "Allocations", File: "Pools/Hidden.cs" });
    }

    [Fact]
    public void Cycles_OfAKnownGraph_AreEachFoundOnce()
    {
        var edges = new Dictionary<string, IReadOnlySet<string>>
        {
            ["A"] = new HashSet<string> { "B" },
            ["B"] = new HashSet<string> { "C", "A" },
            ["C"] = new HashSet<string> { "A" },
            ["D"] = new HashSet<string> { "A" },
        };

        var cycles = NamespaceGraph.Cycles(edges).Select(c => string.Join(">", c)).Order().ToList();

        Assert.Equal(["A>B>A", "A>B>C>A"], cycles);
    }

    private static List<string> Violations(NamespaceGraph graph)
    {
        var layerOf = Layers.SelectMany((areas, i) => areas.Select(a => (a, i))).ToDictionary(x => x.a, x => x.i, StringComparer.Ordinal);
        return graph.Uses
            .Where(u => !Allowed(u.From, u.To))
            .GroupBy(u => (u.From, u.To))
            .Select(g => $"{g.Key.From} → {g.Key.To}: " + string.Join("; ", g.Take(3).Select(u => $"{u.File} uses {u.Symbol}")))
            .ToList();

        bool Allowed(string from, string to) =>
            Only.TryGetValue(from, out var only)
                ? only.Contains(to)
                : layerOf.TryGetValue(from, out var a) && layerOf.TryGetValue(to, out var b) && b < a;
    }

    private static string Describe(NamespaceGraph graph, IReadOnlyList<string> cycle) =>
        string.Join(" → ", cycle) + ": " + string.Join("; ", cycle.Zip(cycle.Skip(1))
            .Select(step => graph.Uses.First(u => u.From == step.First && u.To == step.Second))
            .Select(u => $"{u.File} uses {u.Symbol}"));
}
