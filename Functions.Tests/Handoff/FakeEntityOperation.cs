using System.Text.Json;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Entities;

namespace TenantDb.Functions.Tests.Handoff;

/// <summary>
/// A fake of the entity runtime for one entity: its state kept as the JSON the task hub would store, and the signals it
/// sends recorded. A fake only because the in-memory Durable engine (InProcessTestHost) has no entity support; the
/// LocalHost end-to-end tests run the entity on the real engine.
/// </summary>
public sealed class FakeEntityRuntime(EntityInstanceId id)
{
    public FakeEntityState State { get; } = new();
    public FakeEntityContext Context { get; } = new(id);

    /// <summary>Runs one operation on a fresh entity object, as the dispatcher does for every operation.</summary>
    public async Task<T?> RunAsync<T>(ITaskEntity entity, string operation, object? input = null) =>
        (T?)await entity.RunAsync(new FakeEntityOperation(operation, Context, State, input));

    public Task RunAsync(ITaskEntity entity, string operation, object? input = null) => RunAsync<object>(entity, operation, input);
}

public sealed class FakeEntityOperation(string name, TaskEntityContext context, TaskEntityState state, object? input) : TaskEntityOperation
{
    // The input travels serialised, as it does through the task hub.
    private readonly string? _input = input is null ? null : JsonSerializer.Serialize(input);

    public override string Name => name;
    public override TaskEntityContext Context => context;
    public override TaskEntityState State => state;
    public override bool HasInput => _input is not null;
    public override object? GetInput(Type inputType) => _input is null ? null : JsonSerializer.Deserialize(_input, inputType);
}

public sealed class FakeEntityState : TaskEntityState
{
    /// <summary>Exactly what the task hub would store for this entity (null: the entity does not exist).</summary>
    public string? Json { get; private set; }

    public override bool HasState => Json is not null;
    public override object? GetState(Type type) => Json is null ? null : JsonSerializer.Deserialize(Json, type);
    public override void SetState(object? state) => Json = state is null ? null : JsonSerializer.Serialize(state);
}

public sealed record SentSignal(EntityInstanceId Id, string Operation, object? Input, DateTimeOffset? SignalTime);

public sealed class FakeEntityContext(EntityInstanceId id) : TaskEntityContext
{
    public List<SentSignal> Signals { get; } = [];

    public override EntityInstanceId Id => id;

    public override void SignalEntity(EntityInstanceId id, string operationName, object? input = null, SignalEntityOptions? options = null) =>
        Signals.Add(new SentSignal(id, operationName, input, options?.SignalTime));

    public override string ScheduleNewOrchestration(TaskName name, object? input = null, StartOrchestrationOptions? options = null) =>
        throw new NotSupportedException("CredentialHandoff starts no orchestration.");
}
