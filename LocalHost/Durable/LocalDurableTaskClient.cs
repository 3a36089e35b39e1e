using DurableTask.AzureStorage;
using DurableTask.AzureStorage.Tracking;
using DurableTask.Core;
using DurableTask.Core.History;
using OrchestrationQuery = Microsoft.DurableTask.Client.OrchestrationQuery;
using PurgeResult = Microsoft.DurableTask.Client.PurgeResult;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Client.Entities;
using CoreStatus = DurableTask.Core.OrchestrationStatus;

namespace TenantDb.LocalHost.Durable;

/// <summary>
/// The portable <see cref="DurableTaskClient"/> that <c>[DurableClient]</c> parameters receive, over the engine's
/// orchestration service client. Payloads are serialized with the portable data converter, as the shims read them.
/// </summary>
internal sealed class LocalDurableTaskClient : DurableTaskClient
{
    private static readonly CoreStatus[] RunningStatuses = [CoreStatus.Running, CoreStatus.Pending, CoreStatus.Suspended];
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);

    private readonly DurableEngine engine;
    private readonly DataConverter converter;

    public LocalDurableTaskClient(DurableEngine engine, DataConverter converter)
        : base(engine.HubName)
    {
        this.engine = engine;
        this.converter = converter;
        this.Entities = new LocalDurableEntityClient(engine, converter);
    }

    public override DurableEntityClient Entities { get; }

    private AzureStorageOrchestrationService Service => this.engine.Service;

    public override async Task<string> ScheduleNewOrchestrationInstanceAsync(
        TaskName orchestratorName, object? input = null, StartOrchestrationOptions? options = null, CancellationToken cancellation = default)
    {
        string instanceId = options?.InstanceId ?? Guid.NewGuid().ToString("N");
        OrchestrationInstance instance = new() { InstanceId = instanceId, ExecutionId = Guid.NewGuid().ToString("N") };
        ExecutionStartedEvent started = new(-1, this.converter.Serialize(input))
        {
            Name = orchestratorName.Name,
            Version = options?.Version?.Version ?? string.Empty,
            OrchestrationInstance = instance,
            ScheduledStartTime = options?.StartAt?.UtcDateTime,
            Tags = options?.Tags?.ToDictionary(t => t.Key, t => t.Value) ?? [],
        };
        cancellation.ThrowIfCancellationRequested();
        await this.Service.CreateTaskOrchestrationAsync(new TaskMessage { Event = started, OrchestrationInstance = instance }, RunningStatuses);
        return instanceId;
    }

    public override Task RaiseEventAsync(string instanceId, string eventName, object? eventPayload = null, CancellationToken cancellation = default) =>
        this.SendAsync(instanceId, new EventRaisedEvent(-1, this.converter.Serialize(eventPayload)) { Name = eventName }, cancellation);

    public override async Task TerminateInstanceAsync(string instanceId, TerminateInstanceOptions? options = null, CancellationToken cancellation = default)
    {
        cancellation.ThrowIfCancellationRequested();
        await this.Service.ForceTerminateTaskOrchestrationAsync(instanceId, this.converter.Serialize(options?.Output));
    }

    public override Task SuspendInstanceAsync(string instanceId, string? reason = null, CancellationToken cancellation = default) =>
        this.SendAsync(instanceId, new ExecutionSuspendedEvent(-1, reason), cancellation);

    public override Task ResumeInstanceAsync(string instanceId, string? reason = null, CancellationToken cancellation = default) =>
        this.SendAsync(instanceId, new ExecutionResumedEvent(-1, reason), cancellation);

    public override async Task<OrchestrationMetadata?> GetInstancesAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellation = default)
    {
        cancellation.ThrowIfCancellationRequested();
        IList<OrchestrationState> states = await this.Service.GetOrchestrationStateAsync(instanceId, allExecutions: false, fetchInput: getInputsAndOutputs);
        OrchestrationState? state = states.FirstOrDefault(s => s is not null);
        return state is null || state.OrchestrationStatus == (CoreStatus)(-1) ? null : this.ToMetadata(state, getInputsAndOutputs);
    }

    public override Task<OrchestrationMetadata> WaitForInstanceStartAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellation = default) =>
        this.PollAsync(instanceId, getInputsAndOutputs, m => m.RuntimeStatus != OrchestrationRuntimeStatus.Pending, cancellation);

    public override Task<OrchestrationMetadata> WaitForInstanceCompletionAsync(string instanceId, bool getInputsAndOutputs = false, CancellationToken cancellation = default) =>
        this.PollAsync(instanceId, getInputsAndOutputs, m => m.IsCompleted, cancellation);

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
            DurableStatusQueryResult result = await this.Service.GetOrchestrationStateAsync(
                condition, pageSize ?? filter?.PageSize ?? OrchestrationQuery.DefaultPageSize, continuation ?? filter?.ContinuationToken, cancellation);
            List<OrchestrationMetadata> page = result.OrchestrationState.Select(s => this.ToMetadata(s, condition.FetchInput)).ToList();
            return new Page<OrchestrationMetadata>(page, string.IsNullOrEmpty(result.ContinuationToken) ? null : result.ContinuationToken);
        });

    public override async Task<PurgeResult> PurgeInstanceAsync(string instanceId, PurgeInstanceOptions? options = null, CancellationToken cancellation = default)
    {
        cancellation.ThrowIfCancellationRequested();
        global::DurableTask.Core.PurgeResult result = await ((IOrchestrationServicePurgeClient)this.Service).PurgeInstanceStateAsync(instanceId);
        return new PurgeResult(result.DeletedInstanceCount);
    }

    public override async Task<PurgeResult> PurgeAllInstancesAsync(PurgeInstancesFilter filter, PurgeInstanceOptions? options = null, CancellationToken cancellation = default)
    {
        cancellation.ThrowIfCancellationRequested();
        PurgeInstanceFilter coreFilter = new(
            filter.CreatedFrom?.UtcDateTime ?? DateTime.MinValue,
            filter.CreatedTo?.UtcDateTime,
            filter.Statuses?.Select(s => (CoreStatus)s));
        global::DurableTask.Core.PurgeResult result = await ((IOrchestrationServicePurgeClient)this.Service).PurgeInstanceStateAsync(coreFilter);
        return new PurgeResult(result.DeletedInstanceCount);
    }

    public override ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private async Task SendAsync(string instanceId, HistoryEvent historyEvent, CancellationToken cancellation)
    {
        cancellation.ThrowIfCancellationRequested();
        await this.Service.SendTaskOrchestrationMessageAsync(new TaskMessage
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
            OrchestrationMetadata? metadata = await this.GetInstancesAsync(instanceId, getInputsAndOutputs, cancellation);
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
            DataConverter = this.converter,
        };

    private static TaskFailureDetails? ToTaskFailureDetails(FailureDetails? details) => details is null
        ? null
        : new TaskFailureDetails(details.ErrorType, details.ErrorMessage, details.StackTrace, ToTaskFailureDetails(details.InnerFailure), null);
}
