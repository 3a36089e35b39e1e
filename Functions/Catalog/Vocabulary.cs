namespace TenantDb.Functions.Catalog;

/// <summary>Lifecycle of a pool server: provisioning → initializing → active ⇄ full, plus draining, error, deleting, deleted.</summary>
public enum PoolStatus { Provisioning, Initializing, Active, Full, Draining, Error, Deleting, Deleted }

public enum HealthStatus { Healthy, Degraded, Unhealthy, Unknown }

public enum ServerType { Shared, Dedicated, Platform }

public enum TenantDatabaseStatus { Creating, Ready, Released, Failed, Dropped }

/// <summary>The words of the domain as they stand in SQL and JSON: lower case.</summary>
public static class Vocabulary
{
    public static string ToSql<TEnum>(this TEnum value) where TEnum : struct, Enum =>
        value.ToString().ToLowerInvariant();

    public static TEnum Parse<TEnum>(string value) where TEnum : struct, Enum =>
        TryParse<TEnum>(value, out var parsed)
            ? parsed
            : throw new FormatException($"'{value}' is not a {typeof(TEnum).Name}.");

    /// <summary>Accepts only the exact lower-case word (no numbers, no other casing), so input cannot smuggle values.</summary>
    public static bool TryParse<TEnum>(string? value, out TEnum parsed) where TEnum : struct, Enum
    {
        parsed = default;
        if (string.IsNullOrEmpty(value) || value.Length > 32)
        {
            return false;
        }

        foreach (var candidate in Enum.GetValues<TEnum>())
        {
            if (candidate.ToSql() == value)
            {
                parsed = candidate;
                return true;
            }
        }

        return false;
    }
}
