using System.Reflection;

namespace TenantDb.Tests;

/// <summary>Every test class of this assembly belongs to exactly one known tier, and a unit class boots nothing shared.</summary>
[Trait("Category", Tier.Unit)]
public sealed class TierTests
{
    private static readonly Type[] TestClasses = typeof(Tier).Assembly.GetTypes()
        .Where(t => t.IsClass && !t.IsAbstract && t.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static)
            .Any(m => m.IsDefined(typeof(FactAttribute), inherit: true)))
        .ToArray();

    /// <summary>The Category values a type carries, its base types' included (xunit reads inherited class traits).</summary>
    private static List<string?> Categories(Type type)
    {
        var found = new List<string?>();
        for (var t = type; t is not null; t = t.BaseType)
        {
            found.AddRange(CategoriesOf(t.GetCustomAttributesData()));
        }

        return found;
    }

    private static IEnumerable<string?> CategoriesOf(IEnumerable<CustomAttributeData> attributes) => attributes
        .Where(a => a.AttributeType == typeof(TraitAttribute) && a.ConstructorArguments is [{ Value: Tier.Category }, _])
        .Select(a => a.ConstructorArguments[1].Value as string);

    [Fact]
    public void TestClasses_AreFound()
    {
        Assert.Contains(typeof(TierTests), TestClasses);
        Assert.True(TestClasses.Length > 5, $"only {TestClasses.Length} test classes found");
    }

    [Fact]
    public void TestClasses_EachCarryExactlyOneKnownCategory()
    {
        var wrong = TestClasses
            .Select(t => (Type: t, Categories: Categories(t)))
            .Where(c => c.Categories.Count != 1 || !Tier.All.Contains(c.Categories[0]))
            .Select(c => $"{c.Type.FullName}: [{string.Join(", ", c.Categories)}]")
            .ToList();

        Assert.True(wrong.Count == 0,
            $"Each test class needs exactly one [Trait(\"Category\", Tier.X)] with X in {string.Join("/", Tier.All)}:\n{string.Join("\n", wrong)}");
    }

    [Fact]
    public void TestMethods_CarryNoCategoryOfTheirOwn()
    {
        var wrong = TestClasses
            .SelectMany(t => t.GetMethods().Where(m => m.IsDefined(typeof(FactAttribute), inherit: true) && CategoriesOf(m.GetCustomAttributesData()).Any())
                .Select(m => $"{t.FullName}.{m.Name}"))
            .ToList();

        Assert.True(wrong.Count == 0, $"A tier is set on the class, never on a method:\n{string.Join("\n", wrong)}");
    }

    [Fact]
    public void UnitClasses_ShareNoFixture()
    {
        var wrong = TestClasses
            .Where(t => Categories(t) is [Tier.Unit])
            .Where(t => t.IsDefined(typeof(CollectionAttribute), inherit: true)
                || t.GetInterfaces().Any(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IClassFixture<>)))
            .Select(t => t.FullName)
            .ToList();

        Assert.True(wrong.Count == 0, $"A unit class boots nothing: no [Collection], no IClassFixture<>:\n{string.Join("\n", wrong)}");
    }
}
