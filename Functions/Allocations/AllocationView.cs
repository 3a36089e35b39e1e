using System.Text.Json.Serialization;
using TenantDb.Functions.Secrets;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Allocations;

/// <summary>Where a tenant's database lives (<c>db_server_id</c>: the pool's catalog id), in the platform's contract (never the password unless inline mode asks for it).</summary>
/// <remarks>The names are pinned, so the same JSON comes out of the HTTP API and out of an orchestration's output.</remarks>
public sealed record AllocationView(
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("instance_id")] Guid InstanceId,
    [property: JsonPropertyName("customer_id")] Guid CustomerId,
    [property: JsonPropertyName("plan_tier")] string PlanTier,
    [property: JsonPropertyName("db_server_id")] long DbServerId,
    [property: JsonPropertyName("db_host")] string DbHost,
    [property: JsonPropertyName("db_port")] int DbPort,
    [property: JsonPropertyName("db_name")] string DbName,
    [property: JsonPropertyName("db_user")] string DbUser,
    [property: JsonPropertyName("pool_name")] string PoolName,
    [property: JsonPropertyName("server_type"), JsonConverter(typeof(VocabularyJsonConverter<ServerType>))] ServerType ServerType,
    [property: JsonPropertyName("database_status"), JsonConverter(typeof(VocabularyJsonConverter<TenantDatabaseStatus>))] TenantDatabaseStatus DatabaseStatus,
    [property: JsonPropertyName("created_at")] DateTimeOffset CreatedAt,
    [property: JsonPropertyName("ready_at")] DateTimeOffset? ReadyAt,
    [property: JsonPropertyName("generation")] int Generation,
    [property: JsonPropertyName("credentials"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] CredentialsView? Credentials = null,
    [property: JsonPropertyName("db_password"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? DbPassword = null,
    [property: JsonPropertyName("callback_url"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? CallbackUrl = null,
    [property: JsonPropertyName("quota_state")] string QuotaState = QuotaStates.Ok)
{
    public static AllocationView Of(Pool pool, TenantDatabase tenant, CredentialsView? credentials = null, string? password = null) =>
        new(tenant.Status == TenantDatabaseStatus.Ready ? "allocated" : tenant.Status.ToSql(), tenant.InstanceId, tenant.CustomerId, tenant.PlanTier,
            pool.Id, pool.Host, pool.Port, tenant.DbName, tenant.DbUser, pool.Name, pool.ServerType, tenant.Status, tenant.CreatedAt, tenant.ReadyAt,
            tenant.Generation, credentials, password, tenant.CallbackUrl, tenant.QuotaState);

    // Printing the view (logs, exceptions, test output) never shows an inline password.
    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        builder.Append($"Status = {Status}, InstanceId = {InstanceId}, CustomerId = {CustomerId}, PlanTier = {PlanTier}, DbServerId = {DbServerId}, DbHost = {DbHost}, ");
        builder.Append($"DbPort = {DbPort}, DbName = {DbName}, DbUser = {DbUser}, PoolName = {PoolName}, ServerType = {ServerType}, ");
        builder.Append($"DatabaseStatus = {DatabaseStatus}, CreatedAt = {CreatedAt}, ReadyAt = {ReadyAt}, Generation = {Generation}, Credentials = {Credentials}, ");
        builder.Append($"DbPassword = {(DbPassword is null ? "" : Redacted.Mask)}, CallbackUrl = {CallbackUrl}, QuotaState = {QuotaState}");
        return true;
    }
}

/// <summary>Where to claim the password once, and until when.</summary>
public sealed record CredentialsView(
    [property: JsonPropertyName("claim_url")] string ClaimUrl,
    [property: JsonPropertyName("expires_at")] DateTimeOffset ExpiresAt);
