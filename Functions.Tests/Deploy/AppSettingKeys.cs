using System.Reflection;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Telemetry;

namespace TenantDb.Functions.Tests.Deploy;

/// <summary>
/// The configuration keys the app reads, as app-setting names (<c>Section__Property</c>), taken from the code: every options
/// class with a <c>Section</c> constant, walked into its nested option objects; a dictionary's entry is one segment <c>*</c>
/// (<c>Pools__Tiers__*__Cpu</c>). Plus the catalog connection string and the telemetry settings the app reads directly.
/// </summary>
public static class AppSettingKeys
{
    /// <summary>Deeper than any options class here nests.</summary>
    private const int MaxDepth = 6;

    public static IReadOnlyList<string> FromCode { get; } = Collect();

    /// <summary>True when <paramref name="name"/> (an app setting) is <paramref name="pattern"/>, a <c>*</c> matching one segment.</summary>
    public static bool Matches(string pattern, string name)
    {
        var want = pattern.Split("__");
        var have = name.Split("__");
        return want.Length == have.Length
            && want.Zip(have).All(p => p.First == "*" ? p.Second.Length > 0 : string.Equals(p.First, p.Second, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>The code's key that <paramref name="name"/> sets, or null.</summary>
    public static string? KeyOf(string name) => FromCode.FirstOrDefault(k => Matches(k, name));

    private static List<string> Collect()
    {
        var keys = new List<string>
        {
            $"ConnectionStrings__{CatalogOptions.ConnectionStringName}",
            TelemetryRegistration.AzureMonitorSetting,
            TelemetryRegistration.OtlpSetting,
        };
        var sections = typeof(ServiceRegistration).Assembly.GetTypes()
            .Where(t => t.IsClass && t.Name.EndsWith("Options", StringComparison.Ordinal))
            .Select(t => (Type: t, Section: t.GetField("Section", BindingFlags.Public | BindingFlags.Static)?.GetRawConstantValue() as string))
            .Where(x => x.Section is not null);
        foreach (var (type, section) in sections)
        {
            Walk(type, section!, keys, 0);
        }

        return keys;
    }

    private static void Walk(Type type, string prefix, List<string> keys, int depth)
    {
        Assert.True(depth <= MaxDepth, $"Options nest deeper than {MaxDepth} at {prefix}.");
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite && p.GetSetMethod() is not null && !IsAlias(p)))
        {
            var key = $"{prefix}__{property.Name}";
            var propertyType = property.PropertyType;
            if (IsScalar(propertyType))
            {
                keys.Add(key);
            }
            else if (propertyType.IsGenericType && propertyType.GetGenericTypeDefinition() == typeof(Dictionary<,>))
            {
                var valueType = propertyType.GetGenericArguments()[1];
                if (IsScalar(valueType))
                {
                    keys.Add($"{key}__*");
                }
                else
                {
                    Walk(valueType, $"{key}__*", keys, depth + 1);
                }
            }
            else if (propertyType.IsClass && propertyType.Namespace?.StartsWith("TenantDb.", StringComparison.Ordinal) == true)
            {
                Walk(propertyType, key, keys, depth + 1);
            }
            else
            {
                Assert.Fail($"{type.Name}.{property.Name} ({propertyType.Name}) is a setting of a kind this walk does not know: teach AppSettingKeys.");
            }
        }
    }

    /// <summary>An old name kept so existing configurations bind (e.g. a tier's <c>ConnectionLimit</c>): not a key to deploy.</summary>
    private static bool IsAlias(PropertyInfo property) =>
        property.GetCustomAttribute<System.ComponentModel.EditorBrowsableAttribute>()?.State == System.ComponentModel.EditorBrowsableState.Never;

    private static bool IsScalar(Type type)
    {
        var t = Nullable.GetUnderlyingType(type) ?? type;
        return t.IsPrimitive || t.IsEnum || t == typeof(string) || t == typeof(decimal) || t == typeof(TimeSpan) || t == typeof(Uri);
    }
}
