using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// Every password a test's traffic with the allocator carried (issue 11, secrets): a property named <c>db_password</c>,
/// <c>password</c> or <c>…_password</c>, or a connection string's <c>Password=</c>, in any response or request body that
/// went through <see cref="AllocatorHost.Client"/>. The host looks for each of them in its log when it is disposed.
/// Never prints a password: only counts leave this class.
/// </summary>
public sealed partial class SeenSecrets
{
    /// <summary>Shorter values are no generated password (those are 32 letters and digits) and would match by chance.</summary>
    public const int MinimumLength = 12;

    private readonly ConcurrentDictionary<string, byte> _passwords = new(StringComparer.Ordinal);

    public IReadOnlyCollection<string> Passwords => _passwords.Keys.ToArray();

    public void Add(string? password)
    {
        if (password is { Length: >= MinimumLength })
        {
            _passwords.TryAdd(password, 0);
        }
    }

    /// <summary>Remembers every password in a body: JSON properties and connection strings; a body that is no JSON, its connection strings.</summary>
    public void Remember(string? body)
    {
        if (string.IsNullOrWhiteSpace(body))
        {
            return;
        }

        try
        {
            using var document = JsonDocument.Parse(body);
            Walk(document.RootElement, null);
        }
        catch (JsonException)
        {
            RememberConnectionStrings(body);
        }
    }

    private void Walk(JsonElement element, string? name)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    Walk(property.Value, property.Name);
                }

                break;
            case JsonValueKind.Array:
                foreach (var item in element.EnumerateArray())
                {
                    Walk(item, name);
                }

                break;
            case JsonValueKind.String:
                var value = element.GetString();
                if (name is not null && name.EndsWith("password", StringComparison.OrdinalIgnoreCase))
                {
                    Add(value);
                }

                RememberConnectionStrings(value);
                break;
        }
    }

    private void RememberConnectionStrings(string? text)
    {
        if (text is null || !text.Contains("password", StringComparison.OrdinalIgnoreCase))
        {
            return;
        }

        foreach (Match match in ConnectionStringPassword().Matches(text))
        {
            Add(match.Groups["value"].Value);
        }
    }

    /// <summary>
    /// How many times the needles occur in <paramref name="text"/>: in clear (a generated password needs no JSON escape) and
    /// in base64 of its UTF-8 at any of the three alignments inside a longer base64 text.
    /// </summary>
    public static int CountIn(string text, IEnumerable<string> needles)
    {
        var found = 0;
        foreach (var needle in needles)
        {
            foreach (var form in Forms(needle))
            {
                for (var at = text.IndexOf(form, StringComparison.Ordinal); at >= 0; at = text.IndexOf(form, at + form.Length, StringComparison.Ordinal))
                {
                    found++;
                }
            }
        }

        return found;
    }

    /// <summary>
    /// The forms a secret may take in text: clear, JSON-escaped, and the stable middle of its base64 when it starts 0, 1 or
    /// 2 bytes into a base64 group (the characters that also depend on neighbouring bytes are left off).
    /// </summary>
    public static IReadOnlyList<string> Forms(string secret)
    {
        var forms = new List<string> { secret };
        var escaped = JsonEncodedText.Encode(secret).ToString();
        if (escaped != secret)
        {
            forms.Add(escaped);
        }

        var clear = Encoding.UTF8.GetBytes(secret);
        for (var offset = 0; offset < 3; offset++)
        {
            var padded = new byte[offset + clear.Length];
            clear.CopyTo(padded, offset);
            var base64 = Convert.ToBase64String(padded);
            // Characters wholly inside the secret's bits: skip the group share the prefix touches, keep whole groups only.
            var start = offset == 0 ? 0 : offset == 1 ? 2 : 3;
            var end = (padded.Length / 3) * 4;
            if (end - start >= 16)
            {
                forms.Add(base64[start..end]);
            }
        }

        return forms.Distinct(StringComparer.Ordinal).ToArray();
    }

    [GeneratedRegex(@"(?i)\b(password|pwd)\s*=\s*(?<value>[^;'""\s]+)")]
    private static partial Regex ConnectionStringPassword();

    /// <summary>Remembers the passwords of every request and response body it passes on (bodies are buffered, so still readable).</summary>
    public sealed class Capture(SeenSecrets seen) : DelegatingHandler(new HttpClientHandler())
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.Content is not null)
            {
                seen.Remember(await request.Content.ReadAsStringAsync(cancellationToken));
            }

            var response = await base.SendAsync(request, cancellationToken);
            await response.Content.LoadIntoBufferAsync(cancellationToken);
            seen.Remember(await response.Content.ReadAsStringAsync(cancellationToken));
            return response;
        }
    }
}
