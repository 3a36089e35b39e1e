using DurableTask.Core;
using DurableTask.Core.Entities;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Client.Entities;
using Microsoft.DurableTask.Entities;
using CoreEntityQuery = DurableTask.Core.Entities.EntityBackendQueries.EntityQuery;
using CoreMetadata = DurableTask.Core.Entities.EntityBackendQueries.EntityMetadata;

namespace TenantDb.LocalHost.Durable;

/// <summary>Signal an entity, read its state, list and clean entities — over the engine's entity backend.</summary>
internal sealed class LocalDurableEntityClient(DurableEngine engine, DataConverter converter) : DurableEntityClient(engine.HubName)
{
    private IEntityOrchestrationService Entities => engine.Service;

    private EntityBackendQueries Queries => Entities.EntityBackendQueries
        ?? throw new InvalidOperationException("The orchestration service has no entity support.");

    public override async Task SignalEntityAsync(
        EntityInstanceId id, string operationName, object? input = null, SignalEntityOptions? options = null, CancellationToken cancellation = default)
    {
        cancellation.ThrowIfCancellationRequested();
        var now = DateTime.UtcNow;
        var maxDelay = Entities.EntityBackendProperties?.MaximumSignalDelayTime ?? TimeSpan.FromDays(6);
        (DateTime, DateTime)? scheduled = EntityMessageEvent.GetCappedScheduledTime(now, maxDelay, options?.SignalTime?.UtcDateTime);
        var message = ClientEntityHelpers.EmitOperationSignal(
            new OrchestrationInstance { InstanceId = id.ToString() }, Guid.NewGuid(), operationName, converter.Serialize(input), scheduled);
        await engine.Service.SendTaskOrchestrationMessageAsync(message.AsTaskMessage());
    }

    public override async Task<EntityMetadata?> GetEntityAsync(EntityInstanceId id, bool includeState = true, CancellationToken cancellation = default)
    {
        var metadata = await Queries.GetEntityAsync(EntityId.FromString(id.ToString()), includeState, includeStateless: false, cancellation);
        return metadata is { } m ? ToMetadata(m, includeState) : null;
    }

    public override async Task<EntityMetadata<T>?> GetEntityAsync<T>(EntityInstanceId id, bool includeState = true, CancellationToken cancellation = default)
    {
        var metadata = await Queries.GetEntityAsync(EntityId.FromString(id.ToString()), includeState, includeStateless: false, cancellation);
        return metadata is { } m ? ToMetadata<T>(m, includeState) : null;
    }

    public override AsyncPageable<EntityMetadata> GetAllEntitiesAsync(EntityQuery? filter = null) =>
        Query(filter, m => ToMetadata(m, filter?.IncludeState ?? true));

    public override AsyncPageable<EntityMetadata<T>> GetAllEntitiesAsync<T>(EntityQuery? filter = null) =>
        Query(filter, m => ToMetadata<T>(m, filter?.IncludeState ?? true));

    public override async Task<CleanEntityStorageResult> CleanEntityStorageAsync(
        CleanEntityStorageRequest? request = null, bool continueUntilComplete = true, CancellationToken cancellation = default)
    {
        var value = request ?? CleanEntityStorageRequest.Default;
        var continuation = value.ContinuationToken;
        var removed = 0;
        var released = 0;
        do
        {
            var result = await Queries.CleanEntityStorageAsync(
                new EntityBackendQueries.CleanEntityStorageRequest
                {
                    RemoveEmptyEntities = value.RemoveEmptyEntities,
                    ReleaseOrphanedLocks = value.ReleaseOrphanedLocks,
                    ContinuationToken = continuation,
                },
                cancellation);
            removed += result.EmptyEntitiesRemoved;
            released += result.OrphanedLocksReleased;
            continuation = result.ContinuationToken;
        }
        while (continueUntilComplete && continuation is not null);

        return new CleanEntityStorageResult { EmptyEntitiesRemoved = removed, OrphanedLocksReleased = released, ContinuationToken = continuation };
    }

    private AsyncPageable<TMetadata> Query<TMetadata>(EntityQuery? filter, Func<CoreMetadata, TMetadata> map)
        where TMetadata : notnull =>
        Pageable.Create(async (string? continuation, int? pageSize, CancellationToken cancellation) =>
        {
            var result = await Queries.QueryEntitiesAsync(
                new CoreEntityQuery
                {
                    InstanceIdStartsWith = filter?.InstanceIdStartsWith,
                    LastModifiedFrom = filter?.LastModifiedFrom?.UtcDateTime,
                    LastModifiedTo = filter?.LastModifiedTo?.UtcDateTime,
                    IncludeState = filter?.IncludeState ?? true,
                    IncludeTransient = filter?.IncludeTransient ?? false,
                    PageSize = pageSize ?? filter?.PageSize,
                    ContinuationToken = continuation ?? filter?.ContinuationToken,
                },
                cancellation);
            return new Page<TMetadata>(result.Results.Select(map).ToList(), result.ContinuationToken);
        });

    private EntityMetadata ToMetadata(CoreMetadata metadata, bool includeState) =>
        new(ToInstanceId(metadata.EntityId), includeState && metadata.SerializedState is { } state ? new SerializedData(state, converter) : null)
        {
            LastModifiedTime = new DateTimeOffset(DateTime.SpecifyKind(metadata.LastModifiedTime, DateTimeKind.Utc)),
            BacklogQueueSize = metadata.BacklogQueueSize,
            LockedBy = metadata.LockedBy,
        };

    private EntityMetadata<T> ToMetadata<T>(CoreMetadata metadata, bool includeState)
    {
        var id = ToInstanceId(metadata.EntityId);
        DateTimeOffset modified = new(DateTime.SpecifyKind(metadata.LastModifiedTime, DateTimeKind.Utc));
        return includeState && metadata.SerializedState is { } state
            ? new EntityMetadata<T>(id, converter.Deserialize<T>(state)!) { LastModifiedTime = modified, BacklogQueueSize = metadata.BacklogQueueSize, LockedBy = metadata.LockedBy }
            : new EntityMetadata<T>(id) { LastModifiedTime = modified, BacklogQueueSize = metadata.BacklogQueueSize, LockedBy = metadata.LockedBy };
    }

    private static EntityInstanceId ToInstanceId(EntityId id) => new(id.Name, id.Key);
}
