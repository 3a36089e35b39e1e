using System.Reflection;
using System.Runtime.Loader;
using System.Text.Json;

namespace TenantDb.LocalHost;

/// <summary>Finds the app folder, reads host.json and local.settings.json, loads the app assembly and runs its service hook.</summary>
internal static class AppLoader
{
    private static readonly HashSet<string> ResolvingFolders = new(StringComparer.Ordinal);

    /// <summary>LocalHost:AppPath (--app), else the folder of the app assembly named by LocalHost:AppAssembly, else this program's folder.</summary>
    public static string ResolveAppDirectory(IConfiguration configuration)
    {
        var configured = configuration[LocalHostOptions.Section + ":AppPath"];
        if (!string.IsNullOrWhiteSpace(configured))
        {
            return Path.GetFullPath(configured);
        }

        var assemblyName = configuration[LocalHostOptions.Section + ":AppAssembly"];
        if (!string.IsNullOrWhiteSpace(assemblyName))
        {
            var app = Assembly.Load(new AssemblyName(assemblyName));
            return Path.GetDirectoryName(app.Location) ?? AppContext.BaseDirectory;
        }

        return AppContext.BaseDirectory;
    }

    /// <summary>The app's local.settings.json "Values", added below LocalHost's own configuration sources.</summary>
    public static void AddLocalSettings(ConfigurationManager configuration, string appDirectory)
    {
        var path = Path.Combine(appDirectory, "local.settings.json");
        if (!File.Exists(path))
        {
            return;
        }

        using var document = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        if (!document.RootElement.TryGetProperty("Values", out var values))
        {
            return;
        }

        var settings = values.EnumerateObject()
            .ToDictionary(p => p.Name.Replace("__", ":", StringComparison.Ordinal), p => p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : p.Value.GetRawText());
        ((IList<IConfigurationSource>)configuration.Sources).Insert(0, new Microsoft.Extensions.Configuration.Memory.MemoryConfigurationSource { InitialData = settings });
    }

    /// <summary>extensions.http.routePrefix and extensions.durableTask.hubName of host.json.</summary>
    public static (string RoutePrefix, string? HubName) ReadHostJson(string appDirectory)
    {
        var path = Path.Combine(appDirectory, "host.json");
        if (!File.Exists(path))
        {
            return ("api", null);
        }

        using var document = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        var routePrefix = "api";
        string? hubName = null;
        if (document.RootElement.TryGetProperty("extensions", out var extensions))
        {
            if (extensions.TryGetProperty("http", out var http) && http.TryGetProperty("routePrefix", out var prefix) && prefix.ValueKind == JsonValueKind.String)
            {
                routePrefix = prefix.GetString() ?? "api";
            }

            if (extensions.TryGetProperty("durableTask", out var durable) && durable.TryGetProperty("hubName", out var hub) && hub.ValueKind == JsonValueKind.String)
            {
                hubName = hub.GetString();
            }
        }

        return (routePrefix.Trim('/'), hubName);
    }

    /// <summary>
    /// Loads the app assembly into the default context: the copy this program already references if there is one,
    /// else the file in the app folder, its dependencies resolved through the app's deps.json.
    /// </summary>
    public static Assembly LoadAssembly(string appDirectory, string scriptFile)
    {
        var path = Path.GetFullPath(Path.Combine(appDirectory, scriptFile));
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"The app assembly '{path}' does not exist.");
        }

        lock (ResolvingFolders)
        {
            if (ResolvingFolders.Add(path))
            {
                AssemblyDependencyResolver resolver = new(path);
                AssemblyLoadContext.Default.Resolving += (context, name) =>
                    resolver.ResolveAssemblyToPath(name) is { } resolved ? context.LoadFromAssemblyPath(resolved) : null;
            }
        }

        var assemblyName = AssemblyName.GetAssemblyName(path);
        return AssemblyLoadContext.Default.LoadFromAssemblyName(assemblyName);
    }

    /// <summary>Calls every <c>public static Add*Services(this IServiceCollection, IConfiguration)</c> of the app's public static <c>ServiceRegistration</c> class.</summary>
    public static int RegisterAppServices(Assembly app, IServiceCollection services, IConfiguration configuration)
    {
        var hooks = app.GetExportedTypes()
            .Where(t => t.Name == "ServiceRegistration" && t.IsAbstract && t.IsSealed)
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static))
            .Where(m => m.Name.StartsWith("Add", StringComparison.Ordinal) && m.Name.EndsWith("Services", StringComparison.Ordinal))
            .Where(m => m.GetParameters() is [{ ParameterType: var s }, { ParameterType: var c }]
                && s == typeof(IServiceCollection) && c.IsAssignableFrom(configuration.GetType()));
        var count = 0;
        foreach (var hook in hooks)
        {
            hook.Invoke(null, BindingFlags.DoNotWrapExceptions, null, [services, configuration], null);
            count++;
        }

        return count;
    }
}
