using System.Net;

namespace TenantDb.Functions.Domain;

/// <summary>
/// What an allocation's <c>callback_url</c> may be (issue 14 item 6): an absolute https URL (http only to a loopback host, and only
/// where development allows it), without user info (no secret ever sits in it), at most <see cref="MaxLength"/> characters.
/// </summary>
public static class CallbackUrls
{
    public const int MaxLength = 2048;

    /// <summary>Null when <paramref name="value"/> is acceptable, else why not (a sentence for the caller).</summary>
    public static string? Problem(string value, bool allowLoopbackHttp)
    {
        if (value.Length > MaxLength || value.Any(char.IsControl) || !Uri.TryCreate(value, UriKind.Absolute, out var uri))
        {
            return $"callback_url must be an absolute https URL of at most {MaxLength} characters.";
        }

        if (uri.UserInfo.Length > 0)
        {
            return "callback_url must not carry user info (user:password@): no secret belongs in it.";
        }

        if (uri.Fragment.Length > 0)
        {
            return "callback_url must not have a fragment.";
        }

        if (uri.Scheme == Uri.UriSchemeHttps)
        {
            return null;
        }

        if (uri.Scheme == Uri.UriSchemeHttp && IsLoopback(uri))
        {
            return allowLoopbackHttp ? null : "callback_url over http is allowed only to a loopback host in development (Api:AllowLoopbackCallbacks).";
        }

        return "callback_url must be an https URL (http only to a loopback host in development).";
    }

    private static bool IsLoopback(Uri uri) =>
        uri.IsLoopback || (IPAddress.TryParse(uri.Host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address));
}
