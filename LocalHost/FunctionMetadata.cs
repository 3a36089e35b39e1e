using System.Text.Json;

namespace TenantDb.LocalHost;

/// <summary>One binding of a function as the Worker SDK writes it into <c>functions.metadata</c>.</summary>
public sealed record BindingMetadata(
    string Name,
    string Type,
    string Direction,
    string? AuthLevel,
    IReadOnlyList<string> Methods,
    string? Route,
    string? Schedule,
    bool RunOnStartup);

/// <summary>One function of <c>functions.metadata</c>: where its code is and how it is triggered.</summary>
public sealed record FunctionMetadata(string Name, string ScriptFile, string EntryPoint, IReadOnlyList<BindingMetadata> Bindings)
{
    public const string FileName = "functions.metadata";

    /// <summary>The one input binding whose type ends with "Trigger".</summary>
    public BindingMetadata Trigger =>
        Bindings.SingleOrDefault(b => b.Type.EndsWith("Trigger", StringComparison.OrdinalIgnoreCase))
        ?? throw new FunctionStartupException(Name, "it has no trigger binding");

    public static IReadOnlyList<FunctionMetadata> Read(string appDirectory)
    {
        var path = Path.Combine(appDirectory, FileName);
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"No {FileName} in '{appDirectory}': build the Functions app, or set LocalHost:AppPath (--app) to its output folder.");
        }

        using var document = JsonDocument.Parse(File.ReadAllBytes(path));
        return document.RootElement.EnumerateArray().Select(ReadFunction).ToList();
    }

    private static FunctionMetadata ReadFunction(JsonElement function)
    {
        var name = GetString(function, "name") ?? throw new InvalidOperationException($"A function in {FileName} has no name.");
        var bindings = function.TryGetProperty("bindings", out var list)
            ? list.EnumerateArray().Select(ReadBinding).ToList()
            : [];
        return new FunctionMetadata(
            name,
            GetString(function, "scriptFile") ?? throw new FunctionStartupException(name, "it has no scriptFile"),
            GetString(function, "entryPoint") ?? throw new FunctionStartupException(name, "it has no entryPoint"),
            bindings);
    }

    private static BindingMetadata ReadBinding(JsonElement binding)
    {
        var methods = binding.TryGetProperty("methods", out var m) && m.ValueKind == JsonValueKind.Array
            ? m.EnumerateArray().Select(e => e.GetString() ?? string.Empty).Where(s => s.Length > 0).ToList()
            : [];
        var runOnStartup = binding.TryGetProperty("runOnStartup", out var r)
            && (r.ValueKind == JsonValueKind.True || (r.ValueKind == JsonValueKind.String && bool.TryParse(r.GetString(), out var b) && b));
        return new BindingMetadata(
            GetString(binding, "name") ?? string.Empty,
            GetString(binding, "type") ?? string.Empty,
            GetString(binding, "direction") ?? "In",
            GetString(binding, "authLevel"),
            methods,
            GetString(binding, "route"),
            GetString(binding, "schedule"),
            runOnStartup);
    }

    private static string? GetString(JsonElement element, string property) =>
        element.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}

/// <summary>A function that LocalHost cannot serve; start-up stops with it.</summary>
public sealed class FunctionStartupException(string functionName, string reason)
    : InvalidOperationException($"LocalHost cannot serve function '{functionName}': {reason}.")
{
    public string FunctionName { get; } = functionName;
}
