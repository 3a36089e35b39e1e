using System.Reflection;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Http;
using Microsoft.DurableTask;
using TenantDb.LocalHost.Durable;

namespace TenantDb.LocalHost;

/// <summary>A request that does not bind (malformed JSON, a route value of the wrong type): answered 400.</summary>
internal sealed class RequestBindingException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The app's functions, each checked at start-up: trigger kind, method, a binder per parameter.</summary>
internal sealed partial class FunctionCatalog
{
    private static readonly JsonSerializerOptions BodyJson = new(JsonSerializerDefaults.Web);

    private FunctionCatalog(string appDirectory, Assembly app, IReadOnlyList<FunctionInvoker> functions, string routePrefix, string? hubName)
    {
        AppDirectory = appDirectory;
        App = app;
        Functions = functions;
        RoutePrefix = routePrefix;
        HubName = hubName;
    }

    public string AppDirectory { get; }

    public Assembly App { get; }

    public IReadOnlyList<FunctionInvoker> Functions { get; }

    public string RoutePrefix { get; }

    public string? HubName { get; }

    /// <summary>Whether any function needs the Durable Task engine (a durable trigger or a durable client).</summary>
    public bool UsesDurable => Functions.Any(f => f.Kind is TriggerKind.Orchestration or TriggerKind.Activity or TriggerKind.Entity
        || f.Metadata.Bindings.Any(b => IsType(b, "durableClient")));

    public IEnumerable<FunctionInvoker> OfKind(TriggerKind kind) => Functions.Where(f => f.Kind == kind);

    public static FunctionCatalog Load(string appDirectory)
    {
        var metadata = FunctionMetadata.Read(appDirectory);
        (var routePrefix, var hubName) = AppLoader.ReadHostJson(appDirectory);
        Dictionary<string, Assembly> assemblies = new(StringComparer.OrdinalIgnoreCase);
        List<FunctionInvoker> functions = [];
        foreach (var function in metadata)
        {
            if (!assemblies.TryGetValue(function.ScriptFile, out var assembly))
            {
                assembly = AppLoader.LoadAssembly(appDirectory, function.ScriptFile);
                assemblies[function.ScriptFile] = assembly;
            }

            functions.Add(Build(function, assembly, Path.GetFullPath(Path.Combine(appDirectory, function.ScriptFile))));
        }

        var app = assemblies.Values.FirstOrDefault()
            ?? throw new InvalidOperationException($"'{appDirectory}' has no functions in {FunctionMetadata.FileName}.");
        return new FunctionCatalog(appDirectory, app, functions, routePrefix, hubName);
    }

    private static FunctionInvoker Build(FunctionMetadata function, Assembly assembly, string assemblyPath)
    {
        var trigger = function.Trigger;
        var kind = trigger.Type.ToLowerInvariant() switch
        {
            "httptrigger" => TriggerKind.Http,
            "timertrigger" => TriggerKind.Timer,
            "orchestrationtrigger" => TriggerKind.Orchestration,
            "activitytrigger" => TriggerKind.Activity,
            "entitytrigger" => TriggerKind.Entity,
            _ => throw new FunctionStartupException(function.Name, $"its trigger type '{trigger.Type}' is not supported"),
        };
        foreach (var binding in function.Bindings.Where(b => b != trigger))
        {
            var supported = (IsType(binding, "durableClient") && IsIn(binding))
                || (kind == TriggerKind.Http && IsType(binding, "http") && !IsIn(binding));
            if (!supported)
            {
                throw new FunctionStartupException(function.Name, $"its binding '{binding.Name}' of type '{binding.Type}' is not supported");
            }
        }

        var method = FindMethod(function, assembly);
        var result = FunctionInvoker.UnwrapReturnType(method.ReturnType);
        if (kind == TriggerKind.Http && (typeof(HttpResponseData).IsAssignableFrom(result) || result.GetProperties().Any(p => p.GetCustomAttributes().Any(a => a.GetType().Name.EndsWith("OutputAttribute", StringComparison.Ordinal)))))
        {
            throw new FunctionStartupException(function.Name, $"its return type '{result.Name}' is not supported (return IActionResult or IResult)");
        }

        var routeValues = kind == TriggerKind.Http ? RouteParameterNames(trigger.Route) : [];
        var inputBound = false;
        var binders = method.GetParameters()
            .Select(p => BindParameter(function, kind, trigger, routeValues, p, ref inputBound))
            .ToArray();
        return new FunctionInvoker(function, kind, method, assemblyPath, binders);
    }

    private static MethodInfo FindMethod(FunctionMetadata function, Assembly assembly)
    {
        var dot = function.EntryPoint.LastIndexOf('.');
        if (dot <= 0)
        {
            throw new FunctionStartupException(function.Name, $"its entry point '{function.EntryPoint}' is not Type.Method");
        }

        var type = assembly.GetType(function.EntryPoint[..dot])
            ?? throw new FunctionStartupException(function.Name, $"type '{function.EntryPoint[..dot]}' is not in {assembly.GetName().Name}");
        var candidates = type.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static)
            .Where(m => m.Name == function.EntryPoint[(dot + 1)..])
            .ToArray();
        return candidates.Length == 1
            ? candidates[0]
            : throw new FunctionStartupException(function.Name, $"'{function.EntryPoint}' names {candidates.Length} public methods, not one");
    }

    private static ParameterBinder BindParameter(
        FunctionMetadata function, TriggerKind kind, BindingMetadata trigger, HashSet<string> routeValues, ParameterInfo parameter, ref bool inputBound)
    {
        var type = parameter.ParameterType;
        var name = parameter.Name ?? string.Empty;
        if (type == typeof(CancellationToken))
        {
            return i => new(i.CancellationToken);
        }

        if (type == typeof(FunctionContext))
        {
            return i => new(i.FunctionContext);
        }

        var isTrigger = string.Equals(name, trigger.Name, StringComparison.Ordinal);
        if (parameter.GetCustomAttribute<DurableClientAttribute>() is not null
            || function.Bindings.Any(b => IsType(b, "durableClient") && b.Name == name))
        {
            if (!DurableClientBinding.IsSupported)
            {
                throw Unsupported(function, parameter, "this Worker.Extensions.DurableTask version's FunctionsDurableTaskClient cannot be made");
            }

            return type.IsAssignableFrom(DurableClientBinding.ClientType)
                ? i => new(i.Services.GetRequiredService<DurableClientBinding>().Create())
                : throw Unsupported(function, parameter, "a durable client must be a DurableTaskClient");
        }

        switch (kind)
        {
            case TriggerKind.Http when isTrigger || type == typeof(HttpRequest):
                return type == typeof(HttpRequest) ? i => new(i.Http!.Request) : throw Unsupported(function, parameter, "the HTTP trigger must be an HttpRequest");
            case TriggerKind.Http when type == typeof(HttpContext):
                return i => new(i.Http);
            case TriggerKind.Http when parameter.GetCustomAttribute<FromBodyAttribute>() is not null
                || parameter.GetCustomAttributes().Any(a => a.GetType().FullName == "Microsoft.AspNetCore.Mvc.FromBodyAttribute"):
                return i => ReadBodyAsync(i.Http!, type, i.CancellationToken);
            case TriggerKind.Http when routeValues.Contains(name):
                return RouteValueBinder(function, parameter);
            case TriggerKind.Timer when isTrigger:
                return type == typeof(TimerInfo) ? i => new(i.Trigger) : throw Unsupported(function, parameter, "the timer trigger must be a TimerInfo");
            case TriggerKind.Orchestration when isTrigger:
                return type == typeof(TaskOrchestrationContext) ? i => new(i.Trigger) : throw Unsupported(function, parameter, "the orchestration trigger must be a TaskOrchestrationContext");
            case TriggerKind.Orchestration when !inputBound:
                inputBound = true;
                return i => new(i.Input);
            case TriggerKind.Activity when isTrigger:
                return i => new(i.Trigger);
            case TriggerKind.Entity when isTrigger:
                return type == typeof(TaskEntityDispatcher) ? i => new(i.Trigger) : throw Unsupported(function, parameter, "the entity trigger must be a TaskEntityDispatcher");
            default:
                throw Unsupported(function, parameter, "nothing binds it");
        }
    }

    private static FunctionStartupException Unsupported(FunctionMetadata function, ParameterInfo parameter, string why) =>
        new(function.Name, $"parameter '{parameter.Name}' of type '{parameter.ParameterType.Name}' cannot be bound ({why})");

    private static ParameterBinder RouteValueBinder(FunctionMetadata function, ParameterInfo parameter)
    {
        var type = Nullable.GetUnderlyingType(parameter.ParameterType) ?? parameter.ParameterType;
        var name = parameter.Name!;
        Func<string, object?> parse = type switch
        {
            _ when type == typeof(string) => s => s,
            _ when type == typeof(long) => s => long.TryParse(s, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : throw BadRoute(name),
            _ when type == typeof(int) => s => int.TryParse(s, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : throw BadRoute(name),
            _ when type == typeof(Guid) => s => Guid.TryParse(s, out var v) ? v : throw BadRoute(name),
            _ when type == typeof(bool) => s => bool.TryParse(s, out var v) ? v : throw BadRoute(name),
            _ => throw Unsupported(function, parameter, "route values bind to string, int, long, Guid or bool"),
        };
        return i =>
        {
            var raw = i.Http!.Request.RouteValues.FirstOrDefault(kv => string.Equals(kv.Key, name, StringComparison.OrdinalIgnoreCase)).Value;
            return new(raw is null ? null : parse(Convert.ToString(raw, System.Globalization.CultureInfo.InvariantCulture)!));
        };
    }

    private static RequestBindingException BadRoute(string name) => new($"The route value '{name}' is not valid.");

    private static async ValueTask<object?> ReadBodyAsync(HttpContext http, Type type, CancellationToken cancellationToken)
    {
        try
        {
            var body = await JsonSerializer.DeserializeAsync(http.Request.Body, type, BodyJson, cancellationToken);
            return body ?? throw new RequestBindingException("The request body is empty or null.");
        }
        catch (JsonException e)
        {
            throw new RequestBindingException("The request body is not valid JSON for this operation.", e);
        }
    }

    private static HashSet<string> RouteParameterNames(string? route) =>
        route is null ? [] : RouteParameter().Matches(route).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.OrdinalIgnoreCase);

    private static bool IsType(BindingMetadata binding, string type) => string.Equals(binding.Type, type, StringComparison.OrdinalIgnoreCase);

    private static bool IsIn(BindingMetadata binding) => string.Equals(binding.Direction, "In", StringComparison.OrdinalIgnoreCase);

    [GeneratedRegex(@"\{\*{0,2}([A-Za-z_][A-Za-z0-9_]*)")]
    private static partial Regex RouteParameter();
}
