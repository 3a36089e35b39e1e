namespace TenantDb.Functions.Domain;

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
