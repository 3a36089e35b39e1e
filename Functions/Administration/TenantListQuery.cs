using System.Globalization;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Administration;

/// <summary>The tenant list's filters, order and page, parsed from the raw query-string values (the pool list's conventions).</summary>
public sealed record TenantListQuery(TenantFilter Filter, TenantSort Sort, int Page, int PageSize)
{
    public const int DefaultPageSize = 50;
    public const int MaxPageSize = 500;
    private const int MaxPage = 1_000_000;

    public int Offset => (Page - 1) * PageSize;

    /// <summary>Unknown words, ids and bad numbers are errors (one per field), empty values mean "not given".</summary>
    public static bool TryParse(IReadOnlyDictionary<string, string?> values, PoolsOptions pools, out TenantListQuery query,
        out Dictionary<string, string[]> errors)
    {
        errors = [];
        string? Get(string key) => values.TryGetValue(key, out var v) && !string.IsNullOrEmpty(v) ? v : null;

        long? pool = null;
        if (Get("pool") is { } poolText)
        {
            if (long.TryParse(poolText, NumberStyles.None, CultureInfo.InvariantCulture, out var id) && id > 0)
            {
                pool = id;
            }
            else
            {
                errors["pool"] = ["pool must be a positive pool id."];
            }
        }

        TenantDatabaseStatus? status = null;
        if (Get("status") is { } statusText)
        {
            if (Vocabulary.TryParse<TenantDatabaseStatus>(statusText, out var parsed))
            {
                status = parsed;
            }
            else
            {
                errors["status"] = [$"status must be one of: {string.Join(", ", Enum.GetValues<TenantDatabaseStatus>().Select(v => v.ToSql()))}."];
            }
        }

        var tier = Get("tier");
        if (tier is not null && !pools.TryGetTier(tier, out _))
        {
            errors["tier"] = [$"tier must be one of: {string.Join(", ", pools.Tiers.Keys.Order(StringComparer.Ordinal))}."];
        }

        Guid? customer = null;
        if (Get("customer") is { } customerText)
        {
            if (Guid.TryParseExact(customerText, "D", out var id))
            {
                customer = id;
            }
            else
            {
                errors["customer"] = ["customer must be a customer id (a GUID)."];
            }
        }

        var overQuota = Get("over_quota") switch
        {
            null => null,
            "true" => true,
            "false" => (bool?)false,
            _ => Error<bool?>(errors, "over_quota", "over_quota must be true or false."),
        };
        var sort = Get("sort") switch
        {
            null or "created" => TenantSort.Created,
            "size" => TenantSort.Size,
            "connections" => TenantSort.Connections,
            _ => Error(errors, "sort", "sort must be one of: created, size, connections.", TenantSort.Created),
        };
        query = new TenantListQuery(new TenantFilter(pool, status, tier, customer, overQuota), sort,
            Number("page", Get("page"), 1, MaxPage, errors) ?? 1, Number("page_size", Get("page_size"), 1, MaxPageSize, errors) ?? DefaultPageSize);
        return errors.Count == 0;
    }

    private static T Error<T>(Dictionary<string, string[]> errors, string field, string message, T fallback = default!)
    {
        errors[field] = [message];
        return fallback;
    }

    private static int? Number(string field, string? value, int min, int max, Dictionary<string, string[]> errors)
    {
        if (value is null)
        {
            return null;
        }

        if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max)
        {
            return n;
        }

        errors[field] = [$"{field} must be a whole number between {min} and {max}."];
        return null;
    }
}
