using DurableTask.AzureStorage;
using DurableTask.AzureStorage.Tracking;
using DurableTask.Core;
using DurableTask.Core.History;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Client.Entities;
using CoreStatus = DurableTask.Core.OrchestrationStatus;
using OrchestrationQuery = Microsoft.DurableTask.Client.OrchestrationQuery;
using PurgeResult = Microsoft.DurableTask.Client.PurgeResult;

namespace TenantDb.LocalHost.Durable;

/// <summary>
/// The portable <see cref="DurableTaskClient"/> that <c>[DurableClient]</c> parameters receive, over the engine's
/// orchestration service client. Payloads are serialized with the portable data converter, as the shims read them.
/// </summary>
internal sealed class LocalDurableTaskClient : DurableTaskClient
{
    private static readonly CoreStatus[] RunningStatuses = [CoreStatus.Running, CoreStatus.Pending, CoreStatus.Suspended];
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);

    private readonly DurableEngine _engine;
    private readonly DataConverter _converter;

    public LocalDurableTaskClient(DurableEngine engine, DataConverter converter)
        : base(engine.HubName)
    {
        _engine = engine;
        _converter = converter;
        Entities = new LocalDurableEntityClient(engine, converter);
    }

    public override DurableEntityClient Entities { get; }

    private AzureStorageOrchestrationService Service => _engine.Service;

    public override async Task<string> ScheduleNewOrchestrationInstanceAsync(
        TaskName orchestratorName, object? input = null, StartOrchestrationOptions? options = null, CancellationToken cancellation = default)
    {
        var instanceId = options?.InstanceId ?? Guid.NewGuid().ToString("N");
        OrchestrationInstance instance = new() { InstanceId = instanceId, ExecutionId = Guid.NewGuid().ToString("N") };
        ExecutionStartedEvent started = new(-1, _converter.Serialize(input))
        {
            Name = orchestratorName.Name,
            Version = options?.Version?.Version ?? string.Empty,
            OrchestrationInstance = instance,
            ScheduledStartTime = options?.StartAt?.UtcDateTime,
            Tags = options?.Tags?.ToDictionary(t => t.Key, t => t.Value) ?? [],
        };
        cancellation.ThrowIfCancellationRequested();
        await Service.CreateTaskOrchestrationAsync(new TaskMessage { Event = started, OrchestrationInstance = instance }, RunningStatuses);
        return instanceId;
    }

    public override Task RaiseEventAsync(string instanceId, string eventName, object? eventPayload = null, CancellationToken cancellation = default) =>
        SendAsync(instanceId, new EventRaisedEvent(-1, _converter.Serialize(eventPayload)) { Name = eventName }, cancellation);

    public override async Task TerminateInstanceAsync(string instanceId, TerminateInstanceOptions? options = null, CancellationToken cancellation = default)
    {
        cancellation.ThrowIfCancellationRequested();
        await Service.ForceTerminateTaskOrchestrationAsync(instanceId, _converter.Serialize(options?.Output));
    }

    public override Task SuspendInstanceAsync(string instanceId, string? reason = null, CancellationToken cancellation = default) =>
        SendAsync(instanceId, new ExecutionSuspendedEvent(-1, reason), cancellation);

    public override Task ResumeInstanceAsync(string instanceId, string? reason = null, CancellationToken cancellation = default) =>
        SendAsync(instanceId, new ExecutionResumedEvent(-1, reason), cancellation);

    public override async Task<OrchestrationMetadata?> GetInstancesAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellation = default)
    {
        cancellation.ThrowIfCancellationRequested();
        var states = await Service.GetOrchestrationStateAsync(instanceId, allExecutions: false, fetchInput: getInputsAndOutputs);
        var state = states.FirstOrDefault(s => s is not null);
        return state is null || state.OrchestrationStatus == (CoreStatus)(-1) ? null : ToMetadata(state, getInputsAndOutputs);
    }

    public override Task<OrchestrationMetadata> WaitForInstanceStartAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellation = default) =>
        PollAsync(instanceId, getInputsAndOutputs, m => m.RuntimeStatus != OrchestrationRuntimeStatus.Pending, cancellation);

    public override Task<OrchestrationMetadata> WaitForInstanceCompletionAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellation = default) =>
        PollAsync(instanceId, getInputsAndOutputs, m => m.IsCompleted, cancellation);

    public override AsyncPageable<OrchestrationMetadata> GetAllInstancesAsync(OrchestrationQuery? filter = null) =>
        Pageable.Create(async (string? continuation, int? pageSize, CancellationToken cancellation) =>
        {
            OrchestrationInstanceStatusQueryCondition condition = new()
            {
                InstanceIdPrefix = filter?.InstanceIdPrefix,
                CreatedTimeFrom = filter?.CreatedFrom?.UtcDateTime ?? default,
                CreatedTimeTo = filter?.CreatedTo?.UtcDateTime ?? default,
                RuntimeStatus = filter?.Statuses?.Select(s => (CoreStatus)s).ToList(),
                FetchInput = filter?.FetchInputsAndOutputs ?? false,
                FetchOutput = filter?.FetchInputsAndOutputs ?? false,
                ExcludeEntities = true,
            };
            var result = await Service.GetOrchestrationStateAsync(
                condition, pageSize ?? filter?.PageSize ?? OrchestrationQuery.DefaultPageSize, continuation ?? filter?.ContinuationToken, cancellation);
            var page = result.OrchestrationState.Select(s => ToMetadata(s, condition.FetchInput)).ToList();
            return new Page<OrchestrationMetadata>(page, string.IsNullOrEmpty(result.ContinuationToken) ? null : result.ContinuationToken);
        });

    public override async Task<PurgeResult> PurgeInstanceAsync(string instanceId, PurgeInstanceOptions? options = null, CancellationToken cancellation = default)
    {
        cancellation.ThrowIfCancellationRequested();
        var result = await ((IOrchestrationServicePurgeClient)Service).PurgeInstanceStateAsync(instanceId);
        return new PurgeResult(result.DeletedInstanceCount);
    }

    public override async Task<PurgeResult> PurgeAllInstancesAsync(PurgeInstancesFilter filter, PurgeInstanceOptions? options = null, CancellationToken cancellation = default)
    {
        cancellation.ThrowIfCancellationRequested();
        PurgeInstanceFilter coreFilter = new(
            filter.CreatedFrom?.UtcDateTime ?? DateTime.MinValue,
            filter.CreatedTo?.UtcDateTime,
            filter.Statuses?.Select(s => (CoreStatus)s));
        var result = await ((IOrchestrationServicePurgeClient)Service).PurgeInstanceStateAsync(coreFilter);
        return new PurgeResult(result.DeletedInstanceCount);
    }

    public override ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private async Task SendAsync(string instanceId, HistoryEvent historyEvent, CancellationToken cancellation)
    {
        cancellation.ThrowIfCancellationRequested();
        await Service.SendTaskOrchestrationMessageAsync(new TaskMessage
        {
            OrchestrationInstance = new OrchestrationInstance { InstanceId = instanceId },
            Event = historyEvent,
        });
    }

    private async Task<OrchestrationMetadata> PollAsync(
        string instanceId, bool getInputsAndOutputs, Func<OrchestrationMetadata, bool> done, CancellationToken cancellation)
    {
        while (true)
        {
            var metadata = await GetInstancesAsync(instanceId, getInputsAndOutputs, cancellation);
            if (metadata is not null && done(metadata))
            {
                return metadata;
            }

            await Task.Delay(PollInterval, cancellation);
        }
    }

    private OrchestrationMetadata ToMetadata(OrchestrationState state, bool includeData) =>
        new(state.Name, state.OrchestrationInstance.InstanceId)
        {
            RuntimeStatus = (OrchestrationRuntimeStatus)state.OrchestrationStatus,
            CreatedAt = new DateTimeOffset(DateTime.SpecifyKind(state.CreatedTime, DateTimeKind.Utc)),
            LastUpdatedAt = new DateTimeOffset(DateTime.SpecifyKind(state.LastUpdatedTime, DateTimeKind.Utc)),
            SerializedInput = includeData ? state.Input : null,
            SerializedOutput = includeData ? state.Output : null,
            SerializedCustomStatus = includeData ? state.Status : null,
            FailureDetails = ToTaskFailureDetails(state.FailureDetails),
            Tags = state.Tags is null ? new Dictionary<string, string>() : new Dictionary<string, string>(state.Tags),
            DataConverter = _converter,
        };

    private static TaskFailureDetails? ToTaskFailureDetails(FailureDetails? details) => details is null
        ? null
        : new TaskFailureDetails(details.ErrorType, details.ErrorMessage, details.StackTrace, ToTaskFailureDetails(details.InnerFailure), null);
}
