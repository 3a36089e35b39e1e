using System.Collections;
using System.Collections.Immutable;
using System.Reflection;
using Microsoft.Azure.Functions.Worker;

namespace TenantDb.LocalHost;

/// <summary>
/// The part of the worker's <see cref="FunctionContext"/> that function code uses: invocation id, function
/// definition, items and <see cref="FunctionContext.InstanceServices"/> (which <c>GetLogger</c> reads).
/// </summary>
internal sealed class LocalFunctionContext(LocalFunctionDefinition definition, IServiceProvider services, CancellationToken cancellationToken) : FunctionContext
{
    public override string InvocationId { get; } = Guid.NewGuid().ToString();

    public override string FunctionId => definition.Id;

    public override TraceContext TraceContext { get; } = new LocalTraceContext(System.Diagnostics.Activity.Current);

    public override BindingContext BindingContext { get; } = new LocalBindingContext();

    public override RetryContext RetryContext => null!;

    public override IServiceProvider InstanceServices { get; set; } = services;

    public override FunctionDefinition FunctionDefinition => definition;

    public override IDictionary<object, object> Items { get; set; } = new Dictionary<object, object>();

    public override IInvocationFeatures Features { get; } = new LocalInvocationFeatures();

    public override CancellationToken CancellationToken => cancellationToken;

    private sealed class LocalTraceContext(System.Diagnostics.Activity? activity) : TraceContext
    {
        public override string TraceParent { get; } = activity?.Id ?? string.Empty;

        public override string TraceState { get; } = activity?.TraceStateString ?? string.Empty;
    }

    private sealed class LocalBindingContext : BindingContext
    {
        public override IReadOnlyDictionary<string, object?> BindingData { get; } = new Dictionary<string, object?>();
    }

    private sealed class LocalInvocationFeatures : IInvocationFeatures
    {
        private readonly Dictionary<Type, object> _features = [];

        public T? Get<T>() => _features.TryGetValue(typeof(T), out var value) ? (T)value : default;

        public void Set<T>(T instance)
        {
            if (instance is null)
            {
                _features.Remove(typeof(T));
            }
            else
            {
                _features[typeof(T)] = instance;
            }
        }

        public IEnumerator<KeyValuePair<Type, object>> GetEnumerator() => _features.GetEnumerator();

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}

/// <summary>The function's name, entry point and parameters as the worker describes them.</summary>
internal sealed class LocalFunctionDefinition(FunctionMetadata metadata, string assemblyPath, MethodInfo method) : FunctionDefinition
{
    public override ImmutableArray<FunctionParameter> Parameters { get; } =
        [.. method.GetParameters().Select(p => new FunctionParameter(p.Name ?? string.Empty, p.ParameterType))];

    public override string PathToAssembly => assemblyPath;

    public override string EntryPoint => metadata.EntryPoint;

    public override string Id => metadata.Name;

    public override string Name => metadata.Name;

    public override IImmutableDictionary<string, Microsoft.Azure.Functions.Worker.BindingMetadata> InputBindings { get; } =
        ImmutableDictionary<string, Microsoft.Azure.Functions.Worker.BindingMetadata>.Empty;

    public override IImmutableDictionary<string, Microsoft.Azure.Functions.Worker.BindingMetadata> OutputBindings { get; } =
        ImmutableDictionary<string, Microsoft.Azure.Functions.Worker.BindingMetadata>.Empty;
}
