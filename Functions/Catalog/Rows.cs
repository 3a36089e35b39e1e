using System.Data.Common;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Catalog;

/// <summary>Maps catalog rows to the domain records by column name.</summary>
internal static class Rows
{
    public static Pool ToPool(this DbDataReader r, string prefix = "") => new()
    {
        Id = r.GetInt64(r.GetOrdinal(prefix + "id")),
        Name = r.GetString(r.GetOrdinal(prefix + "name")),
        Host = r.Nullable<string>(prefix + "host") ?? "",
        Port = r.Value<int>(prefix + "port") ?? 0,
        ServerType = Vocabulary.Parse<ServerType>(r.GetString(r.GetOrdinal(prefix + "server_type"))),
        Status = Vocabulary.Parse<PoolStatus>(r.GetString(r.GetOrdinal(prefix + "status"))),
        HealthStatus = Vocabulary.Parse<HealthStatus>(r.GetString(r.GetOrdinal(prefix + "health_status"))),
        CurrentInstances = r.GetInt32(r.GetOrdinal(prefix + "current_instances")),
        MaxInstances = r.GetInt32(r.GetOrdinal(prefix + "max_instances")),
        Priority = r.GetInt32(r.GetOrdinal(prefix + "priority")),
        PostgresVersion = r.Nullable<string>(prefix + "postgres_version"),
        CpuLimit = r.Value<decimal>(prefix + "cpu_limit"),
        MemoryLimit = r.Nullable<string>(prefix + "memory_limit"),
        StoragePath = r.Nullable<string>(prefix + "storage_path"),
        Driver = r.GetString(r.GetOrdinal(prefix + "driver")),
        DriverResourceId = r.Nullable<string>(prefix + "driver_resource_id"),
        ProvisioningInstanceId = r.Nullable<string>(prefix + "provisioning_instance_id"),
        DedicatedToCustomerId = r.Value<Guid>(prefix + "dedicated_to_customer_id"),
        DedicatedToInstanceId = r.Value<Guid>(prefix + "dedicated_to_instance_id"),
        AdminUser = r.GetString(r.GetOrdinal(prefix + "admin_user")),
        AdminPasswordEncrypted = r.GetString(r.GetOrdinal(prefix + "admin_password_encrypted")),
        LastHealthCheck = r.Value<DateTime>(prefix + "last_health_check") is { } checkedAt ? new DateTimeOffset(checkedAt, TimeSpan.Zero) : null,
        LastResponseMs = r.Value<int>(prefix + "last_response_ms"),
        DatabaseCount = r.Value<int>(prefix + "database_count"),
        ConsecutiveHealthFailures = r.GetInt32(r.GetOrdinal(prefix + "consecutive_health_failures")),
        LastError = r.Nullable<string>(prefix + "last_error"),
        CreatedAt = new DateTimeOffset(r.GetDateTime(r.GetOrdinal(prefix + "created_at")), TimeSpan.Zero),
        UpdatedAt = new DateTimeOffset(r.GetDateTime(r.GetOrdinal(prefix + "updated_at")), TimeSpan.Zero),
    };

    public static TenantDatabase ToTenant(this DbDataReader r, string prefix = "") => new()
    {
        Id = r.GetInt64(r.GetOrdinal(prefix + "id")),
        InstanceId = r.GetGuid(r.GetOrdinal(prefix + "instance_id")),
        CustomerId = r.GetGuid(r.GetOrdinal(prefix + "customer_id")),
        PlanTier = r.GetString(r.GetOrdinal(prefix + "plan_tier")),
        DbServerId = r.GetInt64(r.GetOrdinal(prefix + "db_server_id")),
        DbName = r.GetString(r.GetOrdinal(prefix + "db_name")),
        DbUser = r.GetString(r.GetOrdinal(prefix + "db_user")),
        Status = Vocabulary.Parse<TenantDatabaseStatus>(r.GetString(r.GetOrdinal(prefix + "status"))),
        LastError = r.Nullable<string>(prefix + "last_error"),
        CreatedAt = new DateTimeOffset(r.GetDateTime(r.GetOrdinal(prefix + "created_at")), TimeSpan.Zero),
        ReadyAt = r.Value<DateTime>(prefix + "ready_at") is { } ready ? new DateTimeOffset(ready, TimeSpan.Zero) : null,
        ReleasedAt = r.Value<DateTime>(prefix + "released_at") is { } released ? new DateTimeOffset(released, TimeSpan.Zero) : null,
        StockName = r.Nullable<string>(prefix + "stock_name"),
        Generation = r.GetInt32(r.GetOrdinal(prefix + "generation")),
        OwnerRole = r.Nullable<string>(prefix + "owner_role"),
        LoginRole = r.Nullable<string>(prefix + "login_role"),
        AdoptedAt = r.Value<DateTime>(prefix + "adopted_at") is { } adopted ? new DateTimeOffset(adopted, TimeSpan.Zero) : null,
        CallbackUrl = r.Nullable<string>(prefix + "callback_url"),
        QuotaState = r.Optional(prefix + "quota_state") ?? QuotaStates.Ok,
    };

    public static PoolEvent ToPoolEvent(this DbDataReader r) => new(
        r.GetInt64(r.GetOrdinal("id")),
        r.Value<long>("db_server_id"),
        r.Value<Guid>("instance_id"),
        r.GetString(r.GetOrdinal("event")),
        r.Nullable<string>("from_status"),
        r.Nullable<string>("to_status"),
        r.Nullable<string>("reason"),
        r.GetString(r.GetOrdinal("actor")),
        new DateTimeOffset(r.GetDateTime(r.GetOrdinal("at")), TimeSpan.Zero));

    // A column not every query of the tenant row selects.
    private static string? Optional(this DbDataReader r, string column)
    {
        for (var i = 0; i < r.FieldCount; i++)
        {
            if (r.GetName(i) == column)
            {
                return r.IsDBNull(i) ? null : r.GetString(i);
            }
        }

        return null;
    }

    private static T? Nullable<T>(this DbDataReader r, string column) where T : class
    {
        var ordinal = r.GetOrdinal(column);
        return r.IsDBNull(ordinal) ? null : r.GetFieldValue<T>(ordinal);
    }

    private static T? Value<T>(this DbDataReader r, string column) where T : struct
    {
        var ordinal = r.GetOrdinal(column);
        return r.IsDBNull(ordinal) ? null : r.GetFieldValue<T>(ordinal);
    }
}
