using System.Diagnostics;
using System.Text.RegularExpressions;
using OpenTelemetry;

namespace TenantDb.Functions.Telemetry;

/// <summary>
/// Takes secrets out of every span before any exporter sees it. Npgsql records the command text (<c>db.query.text</c>), and
/// the pool DDL that creates or rotates a login carries a SCRAM verifier (<c>PASSWORD 'SCRAM-SHA-256$…'</c>): the literal
/// after PASSWORD and any verifier become <see cref="Redacted"/>; the rest of the statement is kept.
/// </summary>
public sealed partial class SecretRedaction : BaseProcessor<Activity>
{
    public const string Redacted = "'***'";

    public override void OnEnd(Activity data)
    {
        foreach (var (key, value) in data.TagObjects.ToList())
        {
            if (value is string text && Redact(text) is var redacted && !ReferenceEquals(redacted, text))
            {
                data.SetTag(key, redacted);
            }
        }

        if (Redact(data.DisplayName) is var name && !ReferenceEquals(name, data.DisplayName))
        {
            data.DisplayName = name;
        }
    }

    /// <summary>The text with every password literal and SCRAM verifier replaced; the same instance when it had none.</summary>
    public static string Redact(string text)
    {
        if (text.IndexOf("PASSWORD", StringComparison.OrdinalIgnoreCase) < 0 && !text.Contains("SCRAM-SHA-256$", StringComparison.Ordinal))
        {
            return text;
        }

        return Verifier().Replace(PasswordLiteral().Replace(text, "$1" + Redacted), Redacted);
    }

    [GeneratedRegex(@"(PASSWORD\s+)(?:E?'(?:[^']|'')*'?)", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex PasswordLiteral();

    [GeneratedRegex(@"SCRAM-SHA-256\$[^'\s]*", RegexOptions.CultureInvariant)]
    private static partial Regex Verifier();
}
