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

    [GeneratedRegex("^[a-z_][a-z0-9_]*$", RegexOptions.CultureInvariant)]
    private static partial Regex SafeName();
}
