using System.Text.Json;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Tests.Domain;

/// <summary>The words of the domain read the same in SQL, the admin JSON and the allocation JSON: lower case.</summary>
[Trait("Category", Tier.Unit)]
public sealed class DomainWordsTests
{
    private static readonly Pool SharedPool = new()
    {
        Id = 1, Name = "pool-1", Host = "127.0.0.1", Port = 5432, ServerType = ServerType.Shared, Status = PoolStatus.Active,
        HealthStatus = HealthStatus.Healthy, CurrentInstances = 1, MaxInstances = 50, Driver = DriverNames.Process,
        AdminUser = "tenantdb_admin", AdminPasswordEncrypted = "v2:k:x",
    };

    private static readonly TenantDatabase ReadyTenant = new()
    {
        Id = 7, InstanceId = Guid.NewGuid(), CustomerId = Guid.NewGuid(), PlanTier = "standard", DbServerId = 1,
        DbName = "tenant_x", DbUser = "tenant_x_login", Status = TenantDatabaseStatus.Ready, ReadyAt = DateTimeOffset.UtcNow,
    };

    [Fact]
    public void AllocationView_Json_SaysSharedAndReadyAsSqlDoes()
    {
        var json = JsonSerializer.Serialize(AllocationView.Of(SharedPool, ReadyTenant));

        Assert.Contains("\"server_type\":\"shared\"", json, StringComparison.Ordinal);
        Assert.Contains("\"database_status\":\"ready\"", json, StringComparison.Ordinal);
        var back = JsonSerializer.Deserialize<AllocationView>(json)!;
        Assert.Equal((ServerType.Shared, TenantDatabaseStatus.Ready), (back.ServerType, back.DatabaseStatus));
    }

    [Fact]
    public void AllocationView_JsonWithANumberForAWord_IsRefused()
    {
        var json = JsonSerializer.Serialize(AllocationView.Of(SharedPool, ReadyTenant)).Replace("\"shared\"", "0", StringComparison.Ordinal);

        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<AllocationView>(json));
    }

    [Theory]
    [InlineData(ServerType.Shared, "shared")]
    [InlineData(ServerType.Dedicated, "dedicated")]
    [InlineData(TenantDatabaseStatus.Released, "released")]
    [InlineData(PoolStatus.Draining, "draining")]
    [InlineData(HealthStatus.Unhealthy, "unhealthy")]
    public void Vocabulary_Word_IsTheSqlWordBothWays(Enum value, string word)
    {
        var sql = value switch
        {
            ServerType s => s.ToSql(),
            TenantDatabaseStatus t => t.ToSql(),
            PoolStatus p => p.ToSql(),
            HealthStatus h => h.ToSql(),
            _ => throw new ArgumentOutOfRangeException(nameof(value)),
        };

        Assert.Equal(word, sql);
        Assert.Equal(word, JsonSerializer.Serialize(value, value.GetType(), new JsonSerializerOptions
        {
            Converters = { (System.Text.Json.Serialization.JsonConverter)Activator.CreateInstance(typeof(VocabularyJsonConverter<>).MakeGenericType(value.GetType()))! },
        }).Trim('"'));
    }

    [Fact]
    public void LiveStatuses_Sql_IsTheSetOfLiveStatuses()
    {
        var rendered = "(" + string.Join(", ", LiveStatuses.All.Select(s => $"'{s.ToSql()}'")) + ")";
        Assert.Equal(LiveStatuses.Sql, rendered);

        // The unique index that keeps one live database per instance is defined on the same set.
        var migration = File.ReadAllText(Path.Combine(Architecture.NamespaceGraph.AppSourceFolder(), "Catalog", "Migrations", "0001_catalog.sql"));
        Assert.Contains("WHERE status IN " + LiveStatuses.Sql, migration, StringComparison.Ordinal);
    }
}
