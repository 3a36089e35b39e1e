using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Tests.Catalog;

/// <summary>The live-status set has one source: the SQL text the catalog statements interpolate says what the C# set says.</summary>
[Trait("Category", Tier.Unit)]
public sealed class LiveStatusesTests
{
    [Fact]
    public void Sql_RendersAll_AsTheSameWordsInTheSameOrder()
    {
        var rendered = "(" + string.Join(", ", LiveStatuses.All.Select(s => $"'{s.ToSql()}'")) + ")";

        Assert.Equal(LiveStatuses.Sql, rendered);
    }
}
