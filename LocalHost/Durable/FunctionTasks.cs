using System.Reflection;
using DurableTask.Core.Entities;
using DurableTask.Core.Entities.OperationFormat;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;

namespace TenantDb.LocalHost.Durable;

/// <summary>An <c>[OrchestrationTrigger]</c> function as a portable orchestrator, run by the engine through the shim.</summary>
internal sealed class FunctionOrchestrator(FunctionInvoker function, IServiceProvider services, DataConverter converter) : ITaskOrchestrator
{
    public Type InputType { get; } = InputParameterType(function.Method) ?? typeof(object);

    public Type OutputType => typeof(object);

    public async Task<object?> RunAsync(TaskOrchestrationContext context, object? input)
    {
        FunctionsOrchestrationContext wrapped = new(context, input, converter, services.GetRequiredService<ILoggerFactory>());
        return await function.InvokeAsync(new Invocation(function, services, CancellationToken.None) { Trigger = wrapped, Input = input });
    }

    private static Type? InputParameterType(MethodInfo method) => method.GetParameters()
        .Where(p => p.ParameterType != typeof(TaskOrchestrationContext) && p.ParameterType != typeof(FunctionContext) && p.ParameterType != typeof(CancellationToken))
        .Select(p => p.ParameterType)
        .FirstOrDefault();
}

/// <summary>An <c>[ActivityTrigger]</c> function as a portable activity; one DI scope per execution.</summary>
internal sealed class FunctionActivity(FunctionInvoker function, IServiceScopeFactory scopes, CancellationToken stopping) : ITaskActivity
{
    public Type InputType { get; } = function.Method.GetParameters()
        .Single(p => p.Name == function.Metadata.Trigger.Name).ParameterType;

    public Type OutputType => function.ResultType == typeof(void) ? typeof(object) : function.ResultType;

    public async Task<object?> RunAsync(TaskActivityContext context, object? input)
    {
        await using var scope = scopes.CreateAsyncScope();
        var trigger = InputType == typeof(TaskActivityContext) ? context : input;
        return await function.InvokeAsync(new Invocation(function, scope.ServiceProvider, stopping) { Trigger = trigger });
    }
}

/// <summary>
/// An <c>[EntityTrigger]</c> function as the engine's entity. The worker's <see cref="TaskEntityDispatcher"/> takes the
/// batch as a base64 protobuf request (as the Functions host sends it); this encodes the engine's batch, lets the
/// function dispatch it to its <c>TaskEntity&lt;TState&gt;</c>, and decodes the result for the engine. Later constructor
/// parameters (an extended-sessions cache in 1.21) are passed null: no extended sessions.
/// </summary>
internal sealed class FunctionEntity(FunctionInvoker function, IServiceScopeFactory scopes, CancellationToken stopping) : TaskEntity
{
    private static readonly ConstructorInfo? DispatcherConstructor = typeof(TaskEntityDispatcher)
        .GetConstructors(BindingFlags.NonPublic | BindingFlags.Instance)
        .FirstOrDefault(c => c.GetParameters() is [{ ParameterType: var r }, { ParameterType: var s }, ..] rest
            && r == typeof(string) && s == typeof(IServiceProvider) && rest.Skip(2).All(p => !p.ParameterType.IsValueType));

    private static readonly PropertyInfo? DispatcherResult = typeof(TaskEntityDispatcher).GetProperty("Result", BindingFlags.NonPublic | BindingFlags.Instance);

    /// <summary>Whether this worker package's TaskEntityDispatcher still has the members this relies on.</summary>
    public static bool IsSupported => DispatcherConstructor is not null && DispatcherResult?.PropertyType == typeof(string);

    public override async Task<EntityBatchResult> ExecuteOperationBatchAsync(EntityBatchRequest operations)
    {
        await using var scope = scopes.CreateAsyncScope();
        var dispatcher = (TaskEntityDispatcher)DispatcherConstructor!.Invoke(
            [EntityBatchCodec.Encode(operations), scope.ServiceProvider, .. new object?[DispatcherConstructor.GetParameters().Length - 2]]);
        await function.InvokeAsync(new Invocation(function, scope.ServiceProvider, stopping) { Trigger = dispatcher });
        var result = (string?)DispatcherResult!.GetValue(dispatcher) ?? string.Empty;
        return result.Length > 0
            ? EntityBatchCodec.Decode(result)
            : throw new InvalidOperationException($"Entity function '{function.Name}' returned without dispatching (call dispatcher.DispatchAsync<TEntity>()).");
    }
}
