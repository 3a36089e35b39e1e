using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace TenantDb.Functions.Tests.Architecture;

/// <summary>One use of an area by another: which file used which symbol.</summary>
public sealed record NamespaceUse(string From, string To, string File, string Symbol);

/// <summary>
/// Which areas of the app (the namespace under <c>TenantDb.Functions</c>: Domain, Catalog, …) use which, read with the C#
/// compiler's semantic model from the app's sources: every name, member access, extension call and inferred type counts,
/// not only <c>using</c> lines, so a fully qualified name or a <c>var</c> cannot hide a dependency.
/// </summary>
public sealed class NamespaceGraph
{
    public const string Root = "TenantDb.Functions";

    /// <summary>The area of <c>TenantDb.Functions</c> itself: Program and ServiceRegistration, which wire every other area.</summary>
    public const string CompositionRoot = "(composition root)";

    private NamespaceGraph(IReadOnlyList<NamespaceUse> uses) => Uses = uses;

    public IReadOnlyList<NamespaceUse> Uses { get; }

    public IReadOnlyDictionary<string, IReadOnlySet<string>> Edges => Uses
        .GroupBy(u => u.From)
        .ToDictionary(g => g.Key, g => (IReadOnlySet<string>)g.Select(u => u.To).ToHashSet(StringComparer.Ordinal), StringComparer.Ordinal);

    public static string AppSourceFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Functions.sln")))
            {
                return Path.Combine(dir.FullName, "Functions");
            }
        }

        throw new InvalidOperationException("Functions.sln not found above the test binaries.");
    }

    private static readonly Lazy<(CSharpCompilation Compilation, IReadOnlyList<NamespaceUse> Uses)> App = new(ReadApp);

    /// <summary>Reads the app's sources, plus <paramref name="extraSources"/> (tests add a file to prove a cycle is seen);
    /// the app is compiled and walked once per test run, extra files are added to that compilation.</summary>
    public static NamespaceGraph Read(params (string Path, string Text)[] extraSources)
    {
        var (compilation, uses) = App.Value;
        if (extraSources.Length == 0)
        {
            return new NamespaceGraph(uses);
        }

        var extra = extraSources.Select(f => CSharpSyntaxTree.ParseText(f.Text, Parse, f.Path)).ToList();
        var withExtra = compilation.AddSyntaxTrees(extra);
        ThrowIfUnbound(withExtra);
        return new NamespaceGraph(uses.Concat(extra.SelectMany(t => UsesIn(withExtra, t))).ToList());
    }

    private static readonly CSharpParseOptions Parse = CSharpParseOptions.Default.WithLanguageVersion(LanguageVersion.Preview);

    private static (CSharpCompilation, IReadOnlyList<NamespaceUse>) ReadApp()
    {
        var folder = AppSourceFolder();
        var trees = Directory.EnumerateFiles(folder, "*.cs", SearchOption.AllDirectories)
            .Where(f => !IsBuildOutput(Path.GetRelativePath(folder, f)))
            .Select(f => CSharpSyntaxTree.ParseText(File.ReadAllText(f), Parse, Path.GetRelativePath(folder, f)))
            .Append(CSharpSyntaxTree.ParseText(ImplicitUsings, Parse, "ImplicitUsings.g.cs"))
            .ToList();
        var compilation = CSharpCompilation.Create("Layering", trees, References(),
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
        ThrowIfUnbound(compilation);
        return (compilation, trees.SelectMany(t => UsesIn(compilation, t)).ToList());
    }

    private static void ThrowIfUnbound(CSharpCompilation compilation)
    {
        var unresolved = compilation.GetDiagnostics()
            .Where(d => d.Id is "CS0246" or "CS0234" or "CS0103" && d.Severity == DiagnosticSeverity.Error)
            .Select(d => d.ToString())
            .ToList();
        if (unresolved.Count > 0)
        {
            // A name the compiler could not bind is a dependency the graph would miss.
            throw new InvalidOperationException("The sources do not bind; the graph would be incomplete:\n" + string.Join("\n", unresolved.Take(20)));
        }
    }

    private static IEnumerable<NamespaceUse> UsesIn(CSharpCompilation compilation, SyntaxTree tree)
    {
        var model = compilation.GetSemanticModel(tree);
        var root = tree.GetRoot();
        var from = AreaOf(root.DescendantNodes().OfType<BaseNamespaceDeclarationSyntax>().FirstOrDefault()?.Name.ToString());
        if (from is null)
        {
            return [];
        }

        return root.DescendantNodes()
            .Where(n => n.FirstAncestorOrSelf<UsingDirectiveSyntax>() is null)
            .SelectMany(node => SymbolsOf(node, model))
            .Select(symbol => (Symbol: symbol, To: AreaOf(NamespaceOf(symbol))))
            .Where(x => x.To is not null && x.To != from)
            .Select(x => new NamespaceUse(from, x.To!, tree.FilePath, x.Symbol.ToDisplayString()))
            .DistinctBy(u => (u.To, u.Symbol))
            .ToList();
    }

    /// <summary>Every cycle among the areas, each as the path that closes it (A → B → A).</summary>
    public static IReadOnlyList<IReadOnlyList<string>> Cycles(IReadOnlyDictionary<string, IReadOnlySet<string>> edges)
    {
        var cycles = new List<IReadOnlyList<string>>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var start in edges.Keys.Order(StringComparer.Ordinal))
        {
            var path = new List<string> { start };
            Walk(start);
            void Walk(string node)
            {
                foreach (var next in edges.GetValueOrDefault(node) ?? new HashSet<string>())
                {
                    if (next == start)
                    {
                        var cycle = path.Append(start).ToList();
                        // The same cycle found from another of its nodes is reported once.
                        if (seen.Add(string.Join(">", cycle.Skip(1).Order(StringComparer.Ordinal))))
                        {
                            cycles.Add(cycle);
                        }
                    }
                    else if (!path.Contains(next) && string.CompareOrdinal(next, start) > 0)
                    {
                        path.Add(next);
                        Walk(next);
                        path.RemoveAt(path.Count - 1);
                    }
                }
            }
        }

        return cycles;
    }

    public static string? AreaOf(string? ns)
    {
        if (ns is null || !ns.StartsWith(Root + ".", StringComparison.Ordinal))
        {
            return ns == Root ? CompositionRoot : null;
        }

        var rest = ns[(Root.Length + 1)..];
        var dot = rest.IndexOf('.');
        return dot < 0 ? rest : rest[..dot];
    }

    private static IEnumerable<ISymbol> SymbolsOf(SyntaxNode node, SemanticModel model)
    {
        switch (node)
        {
            case SimpleNameSyntax name:
                var info = model.GetSymbolInfo(name);
                if ((info.Symbol ?? info.CandidateSymbols.FirstOrDefault()) is { } symbol)
                {
                    yield return symbol;
                }

                break;
            case ExpressionSyntax expression when model.GetTypeInfo(expression).Type is INamedTypeSymbol type:
                yield return type;
                foreach (var argument in type.TypeArguments)
                {
                    yield return argument;
                }

                break;
        }
    }

    private static string? NamespaceOf(ISymbol symbol) => symbol switch
    {
        INamespaceSymbol => null,
        IArrayTypeSymbol array => NamespaceOf(array.ElementType),
        ITypeSymbol type => type.ContainingNamespace?.ToDisplayString(),
        _ => symbol.ContainingType?.ContainingNamespace?.ToDisplayString(),
    };

    private static bool IsBuildOutput(string relativePath) =>
        relativePath.StartsWith("bin" + Path.DirectorySeparatorChar, StringComparison.Ordinal)
        || relativePath.StartsWith("obj" + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    // The app compiles with the SDK's implicit usings; the graph's compilation needs the same ones.
    private const string ImplicitUsings = """
        global using System;
        global using System.Collections.Generic;
        global using System.IO;
        global using System.Linq;
        global using System.Net.Http;
        global using System.Threading;
        global using System.Threading.Tasks;
        """;

    private static IEnumerable<MetadataReference> References()
    {
        // The test host's trusted assemblies are the app's dependencies and the frameworks; the app's own assembly is left
        // out because its sources are compiled here.
        var trusted = ((string?)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        return trusted
            .Where(p => !Path.GetFileName(p).StartsWith("TenantDb.", StringComparison.Ordinal))
            .Select(p => MetadataReference.CreateFromFile(p));
    }
}
