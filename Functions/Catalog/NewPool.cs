using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Catalog;

/// <summary>A pool to be recorded in the catalog.</summary>
public sealed record NewPool
{
    public required string Name { get; init; }
    public required string Host { get; init; }
    public required int Port { get; init; }
    public required ServerType ServerType { get; init; }
    public required PoolStatus Status { get; init; }
    public required int MaxInstances { get; init; }
    public required string Driver { get; init; }
    public required string AdminUser { get; init; }
    public required string AdminPasswordEncrypted { get; init; }
    /// <summary>The priority of a pool nobody gave one (lower is preferred).</summary>
    public const int DefaultPriority = 100;

    public int Priority { get; init; } = DefaultPriority;
    public string? PostgresVersion { get; init; }
    public decimal? CpuLimit { get; init; }
    public string? MemoryLimit { get; init; }
    public string? StoragePath { get; init; }
    public string? DriverResourceId { get; init; }
    public Guid? DedicatedToCustomerId { get; init; }
    public Guid? DedicatedToInstanceId { get; init; }

    /// <summary>
    /// The one place the fields meet their <c>db_servers</c> columns: the insert's column list, its parameter names
    /// and their values all come from here, in this order.
    /// </summary>
    internal IReadOnlyList<(string Column, object Value)> Columns() =>
    [
        ("name", Name),
        ("host", Host),
        ("port", Port),
        ("server_type", ServerType.ToSql()),
        ("status", Status.ToSql()),
        ("max_instances", MaxInstances),
        ("priority", Priority),
        ("postgres_version", (object?)PostgresVersion ?? DBNull.Value),
        ("cpu_limit", (object?)CpuLimit ?? DBNull.Value),
        ("memory_limit", (object?)MemoryLimit ?? DBNull.Value),
        ("storage_path", (object?)StoragePath ?? DBNull.Value),
        ("driver", Driver),
        ("driver_resource_id", (object?)DriverResourceId ?? DBNull.Value),
        ("dedicated_to_customer_id", (object?)DedicatedToCustomerId ?? DBNull.Value),
        ("dedicated_to_instance_id", (object?)DedicatedToInstanceId ?? DBNull.Value),
        ("admin_user", AdminUser),
        ("admin_password_encrypted", AdminPasswordEncrypted),
    ];
}
