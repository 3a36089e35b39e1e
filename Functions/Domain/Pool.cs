namespace TenantDb.Functions.Domain;

/// <summary>A PostgreSQL server that hosts tenant databases (a row of <c>db_servers</c>).</summary>
public sealed record Pool
{
    public required long Id { get; init; }
    public required string Name { get; init; }
    /// <summary>Empty (and <see cref="Port"/> 0) while the server is being provisioned.</summary>
    public required string Host { get; init; }
    public required int Port { get; init; }
    public required ServerType ServerType { get; init; }
    public required PoolStatus Status { get; init; }
    public required HealthStatus HealthStatus { get; init; }
    public required int CurrentInstances { get; init; }
    public required int MaxInstances { get; init; }
    public int Priority { get; init; }
    public string? PostgresVersion { get; init; }
    public decimal? CpuLimit { get; init; }
    public string? MemoryLimit { get; init; }
    public string? StoragePath { get; init; }
    public required string Driver { get; init; }
    public string? DriverResourceId { get; init; }
    public string? ProvisioningInstanceId { get; init; }
    public Guid? DedicatedToCustomerId { get; init; }
    public Guid? DedicatedToInstanceId { get; init; }
    public required string AdminUser { get; init; }
    /// <summary>Ciphertext from the secrets protector; never the clear password.</summary>
    public required string AdminPasswordEncrypted { get; init; }
    public DateTimeOffset? LastHealthCheck { get; init; }
    public int? LastResponseMs { get; init; }
    public int? DatabaseCount { get; init; }
    public int ConsecutiveHealthFailures { get; init; }
    public string? LastError { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }
}
