using System.Globalization;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Administration;

/// <summary>The pool list's filters and page, parsed from the raw query-string values.</summary>
public sealed record PoolListQuery(PoolStatus? Status, ServerType? ServerType, HealthStatus? Health, int Page, int PageSize)
{
    public const int DefaultPageSize = 50;
    public const int MaxPageSize = 200;
    private const int MaxPage = 1_000_000;

    public int Offset => (Page - 1) * PageSize;

    /// <summary>Unknown words and bad numbers are errors (one per field), empty values mean "not given".</summary>
    public static bool TryParse(string? status, string? serverType, string? healthStatus, string? page, string? pageSize,
        out PoolListQuery query, out Dictionary<string, string[]> errors)
    {
        errors = [];
        query = new PoolListQuery(
            Filter<PoolStatus>("status", status, errors),
            Filter<ServerType>("server_type", serverType, errors),
            Filter<HealthStatus>("health_status", healthStatus, errors),
            Number("page", page, 1, 1, MaxPage, errors),
            Number("page_size", pageSize, DefaultPageSize, 1, MaxPageSize, errors));
        return errors.Count == 0;
    }

    private static T? Filter<T>(string field, string? value, Dictionary<string, string[]> errors) where T : struct, Enum
    {
        if (string.IsNullOrEmpty(value))
        {
            return null;
        }

        if (Vocabulary.TryParse<T>(value, out var parsed))
        {
            return parsed;
        }

        errors[field] = [$"{field} must be one of: {string.Join(", ", Enum.GetValues<T>().Select(v => v.ToSql()))}."];
        return null;
    }

    private static int Number(string field, string? value, int fallback, int min, int max, Dictionary<string, string[]> errors)
    {
        if (string.IsNullOrEmpty(value))
        {
            return fallback;
        }

        if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max)
        {
            return n;
        }

        errors[field] = [$"{field} must be a whole number between {min} and {max}."];
        return fallback;
    }
}
