using System.Reflection;

namespace TenantDb.LocalHost;

/// <summary>The trigger kinds LocalHost serves.</summary>
public enum TriggerKind
{
    Http,
    Timer,
    Orchestration,
    Activity,
    Entity,
}

/// <summary>What one invocation binds from: the request, the trigger value, the scope's services.</summary>
internal sealed class Invocation(FunctionInvoker function, IServiceProvider services, CancellationToken cancellationToken)
{
    private LocalFunctionContext? _functionContext;

    public IServiceProvider Services => services;

    public CancellationToken CancellationToken => cancellationToken;

    public HttpContext? Http { get; init; }

    /// <summary>The trigger's value: a <c>TimerInfo</c>, an orchestration context, an activity input or an entity dispatcher.</summary>
    public object? Trigger { get; init; }

    /// <summary>An orchestration's input, for an orchestrator's extra input parameter.</summary>
    public object? Input { get; init; }

    public LocalFunctionContext FunctionContext => _functionContext ??= new LocalFunctionContext(function.Definition, services, cancellationToken);
}

/// <summary>Binds a parameter for an invocation.</summary>
internal delegate ValueTask<object?> ParameterBinder(Invocation invocation);

/// <summary>A function's method with one binder per parameter, checked at start-up; creates the class per invocation.</summary>
internal sealed class FunctionInvoker
{
    private readonly ParameterBinder[] _binders;
    private readonly ObjectFactory? _factory;

    public FunctionInvoker(FunctionMetadata metadata, TriggerKind kind, MethodInfo method, string assemblyPath, ParameterBinder[] binders)
    {
        Metadata = metadata;
        Kind = kind;
        Method = method;
        _binders = binders;
        Definition = new LocalFunctionDefinition(metadata, assemblyPath, method);
        _factory = method.IsStatic ? null : ActivatorUtilities.CreateFactory(method.DeclaringType!, Type.EmptyTypes);
    }

    public FunctionMetadata Metadata { get; }

    public string Name => Metadata.Name;

    public TriggerKind Kind { get; }

    public MethodInfo Method { get; }

    public LocalFunctionDefinition Definition { get; }

    /// <summary>The return type with Task/ValueTask unwrapped (typeof(void) for none).</summary>
    public Type ResultType => UnwrapReturnType(Method.ReturnType);

    public async Task<object?> InvokeAsync(Invocation invocation)
    {
        var arguments = new object?[_binders.Length];
        for (var i = 0; i < arguments.Length; i++)
        {
            arguments[i] = await _binders[i](invocation);
        }

        var instance = _factory?.Invoke(invocation.Services, null);
        try
        {
            var returned = Method.Invoke(instance, BindingFlags.DoNotWrapExceptions, null, arguments, null);
            return await AwaitResultAsync(returned, Method.ReturnType);
        }
        finally
        {
            switch (instance)
            {
                case IAsyncDisposable asyncDisposable:
                    await asyncDisposable.DisposeAsync();
                    break;
                case IDisposable disposable:
                    disposable.Dispose();
                    break;
            }
        }
    }

    public static Type UnwrapReturnType(Type type)
    {
        if (type == typeof(Task) || type == typeof(ValueTask))
        {
            return typeof(void);
        }

        if (type.IsGenericType && (type.GetGenericTypeDefinition() == typeof(Task<>) || type.GetGenericTypeDefinition() == typeof(ValueTask<>)))
        {
            return type.GetGenericArguments()[0];
        }

        return type;
    }

    private static async Task<object?> AwaitResultAsync(object? returned, Type declared)
    {
        switch (returned)
        {
            case null:
                return null;
            case ValueTask valueTask:
                await valueTask;
                return null;
            case Task task:
                await task;
                return declared.IsGenericType && declared.GetGenericTypeDefinition() == typeof(Task<>)
                    ? declared.GetProperty(nameof(Task<object>.Result))!.GetValue(task)
                    : null;
        }

        if (declared.IsGenericType && declared.GetGenericTypeDefinition() == typeof(ValueTask<>))
        {
            var task = (Task)declared.GetMethod(nameof(ValueTask<object>.AsTask))!.Invoke(returned, null)!;
            await task;
            return task.GetType().GetProperty(nameof(Task<object>.Result))!.GetValue(task);
        }

        return returned;
    }
}
