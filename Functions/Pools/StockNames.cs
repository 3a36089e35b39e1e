using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace TenantDb.Functions.Pools;

/// <summary>
/// Names of warm-stock databases (DESIGN.md §9): random, never derived from an instance, under a prefix no tenant name can
/// have (the tenant prefix is checked against it), so a stock name never matches a tenant's objects.
/// </summary>
public static partial class StockNames
{
    public const string Prefix = "tenantdb_stock_";

    /// <summary>A new stock name: the prefix and 20 random hex digits (the catalog's check constraint says the same).</summary>
    public static string New() => Prefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(10));

    /// <summary>The stock's owner role, renamed to the tenant's owner role when a tenant claims the stock.</summary>
    public static string OwnerRole(string stock) => Ensure(stock) + "_owner";

    public static bool IsStock(string name) => StockName().IsMatch(name);

    /// <summary>The name itself, or an exception: DDL never runs on a name that is not a stock name.</summary>
    public static string Ensure(string name) => IsStock(name) ? name : throw new ArgumentException("Not a warm-stock name.", nameof(name));

    [GeneratedRegex("^tenantdb_stock_[0-9a-f]{20}$", RegexOptions.CultureInvariant)]
    private static partial Regex StockName();
}
