using System.Text.Json.Serialization;

namespace TenantDb.Functions.Backups;

/// <summary>
/// The durable runs of backups and restores: names, instance ids, inputs and outputs. The backup use cases own this contract
/// and start the runs by name; <c>Orchestrations/BackupTenant</c> and <c>Orchestrations/RestoreTenant</c> implement it.
/// </summary>
public static class BackupRuns
{
    public const string BackupOrchestrator = "BackupTenant";
    public const string RestoreOrchestrator = "RestoreTenant";
    public const string RestoreIntoOrchestrator = "RestoreIntoInstance";

    /// <summary>One run per backup: its id is derived from the backup id.</summary>
    public static string BackupInstanceIdFor(Guid backupId) => $"backup-{backupId:D}";

    /// <summary>One run per restore request.</summary>
    public static string RestoreInstanceIdFor(Guid restoreId) => $"restore-{restoreId:D}";
}

public sealed record BackupRunInput(Guid BackupId);

/// <summary>What a backup run came to (its orchestration's output).</summary>
public sealed record BackupResult(
    [property: JsonPropertyName("backup_id")] Guid BackupId,
    [property: JsonPropertyName("instance_id")] Guid InstanceId,
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("size_bytes")] long? SizeBytes,
    [property: JsonPropertyName("sha256")] string? Sha256,
    [property: JsonPropertyName("seconds")] double? Seconds,
    [property: JsonPropertyName("error")] string? Error);

public sealed record RestoreRunInput(Guid InstanceId, Guid BackupId);

/// <summary>What a restore run came to (its orchestration's output): <c>restored</c>, or <c>failed</c> with the tenant as it was.</summary>
public sealed record RestoreResult(
    [property: JsonPropertyName("instance_id")] Guid InstanceId,
    [property: JsonPropertyName("backup_id")] Guid BackupId,
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("tables")] int Tables,
    [property: JsonPropertyName("rows")] long Rows,
    [property: JsonPropertyName("large_objects")] long LargeObjects,
    [property: JsonPropertyName("seconds")] double Seconds,
    [property: JsonPropertyName("downtime_ms")] double? DowntimeMs,
    [property: JsonPropertyName("error")] string? Error)
{
    public const string Restored = "restored";
    public const string Failed = "failed";
}

/// <summary>A backup as the API lists it.</summary>
public sealed record BackupView(
    Guid BackupId, Guid InstanceId, long PoolId, string Status, string? ServerVersion, long? SizeBytes, string? Sha256, int? Tables,
    long? LargeObjects, DateTimeOffset StartedAt, DateTimeOffset? FinishedAt, DateTimeOffset? ExpiresAt, string? Error, string Kind)
{
    public static BackupView Of(Catalog.TenantBackup b) => new(b.Id, b.InstanceId, b.DbServerId, b.Status, b.ServerVersion, b.SizeBytes, b.Sha256,
        b.TableRows?.Count, b.LargeObjects, b.StartedAt, b.FinishedAt, b.ExpiresAt, b.Error, b.Kind);
}

/// <summary>A restore into a new instance: the backup of <see cref="SourceInstanceId"/>, into <see cref="TargetInstanceId"/>.</summary>
/// <param name="PollInterval">
/// How often the run tries again while the target's server is being made (its dedicated server, or a shared pool when none
/// has room); null (a run started before waiting existed) fails at once when no server has room.
/// </param>
/// <param name="Timeout">How long the run waits for that server before it fails with nothing of the target made.</param>
public sealed record RestoreIntoRunInput(Guid SourceInstanceId, Guid BackupId, Guid TargetInstanceId, string BaseUrl, TimeSpan? PollInterval = null,
    TimeSpan? Timeout = null);

/// <summary>
/// One try of a restore into a new instance (its <c>TryRestoreInto</c> activity): the run's <see cref="Result"/>, or the
/// <see cref="Step"/> it waits at (a server being provisioned for the target); <see cref="MadePoolId"/> is the dedicated server
/// this try reserved for the target, retired again when the restore fails.
/// </summary>
public sealed record RestoreIntoTry(RestoreIntoResult? Result, string? Step, long? MadePoolId);

/// <summary>After a failed restore into <see cref="TargetInstanceId"/>: the dedicated server the run made for it.</summary>
public sealed record RestoreIntoRetireInput(long PoolId, Guid TargetInstanceId);

/// <summary>
/// What a restore into a new instance came to (its orchestration's output): <c>restored</c> with the target's claim URL (the
/// password only through the handoff), or <c>failed</c> with nothing of the target left.
/// </summary>
public sealed record RestoreIntoResult(
    [property: JsonPropertyName("instance_id")] Guid SourceInstanceId,
    [property: JsonPropertyName("backup_id")] Guid BackupId,
    [property: JsonPropertyName("target_instance_id")] Guid TargetInstanceId,
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("db_server_id")] long? PoolId,
    [property: JsonPropertyName("db_name")] string? DbName,
    [property: JsonPropertyName("claim_url")] string? ClaimUrl,
    [property: JsonPropertyName("tables")] int Tables,
    [property: JsonPropertyName("rows")] long Rows,
    [property: JsonPropertyName("large_objects")] long LargeObjects,
    [property: JsonPropertyName("seconds")] double Seconds,
    [property: JsonPropertyName("error")] string? Error);
