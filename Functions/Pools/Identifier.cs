using System.Text;
using System.Text.RegularExpressions;

namespace TenantDb.Functions.Pools;

/// <summary>PostgreSQL identifiers made only from validated parts: allow-listed characters, length checked, always quoted.</summary>
public static partial class Identifier
{
    /// <summary>PostgreSQL truncates longer names silently, which can make two names collide.</summary>
    public const int MaxBytes = 63;

    public static bool IsSafe(string name) =>
        Encoding.UTF8.GetByteCount(name) <= MaxBytes && SafeName().IsMatch(name);

    public static string Quote(string name) =>
        IsSafe(name) ? $"\"{name}\"" : throw new ArgumentException("Not a safe PostgreSQL identifier.", nameof(name));

    /// <summary>
    /// Quotes a name the server itself reported (e.g. from <c>pg_database</c>), which need not be one of ours: embedded quotes
    /// doubled. Never for names that come from a request.
    /// </summary>
    public static string QuoteAny(string serverName) =>
        serverName.Length > 0 && !serverName.Contains('\0') && Encoding.UTF8.GetByteCount(serverName) <= MaxBytes
            ? $"\"{serverName.Replace("\"", "\"\"", StringComparison.Ordinal)}\""
            : throw new ArgumentException("Not a PostgreSQL identifier.", nameof(serverName));

    [GeneratedRegex("^[a-z_][a-z0-9_]*$", RegexOptions.CultureInvariant)]
    private static partial Regex SafeName();
}
