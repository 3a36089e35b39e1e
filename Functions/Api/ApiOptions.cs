using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace TenantDb.Functions.Api;

/// <summary>The <c>Api</c> section: where callers reach this app.</summary>
public sealed class ApiOptions
{
    public const string Section = "Api";

    /// <summary>Where nothing says otherwise: the local Functions host's address.</summary>
    public const string LocalBaseUrl = "http://127.0.0.1:7071";

    /// <summary>
    /// The app's public origin (and path prefix, if a proxy adds one), without <c>/api</c>. Claim URLs are built from it,
    /// never from a request's Host header. Default: <c>https://{WEBSITE_HOSTNAME}</c> (<c>http</c> for a loopback host
    /// name, as the local hosts set it), else <see cref="LocalBaseUrl"/>.
    /// </summary>
    public string? PublicBaseUrl { get; set; }

    public string BaseUrl => (PublicBaseUrl ?? "").TrimEnd('/');

    public static bool IsValidBaseUrl(string? value) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri)
        && (uri.Scheme == Uri.UriSchemeHttps || uri.Scheme == Uri.UriSchemeHttp)
        && uri.Query.Length == 0 && uri.Fragment.Length == 0 && uri.UserInfo.Length == 0
        && !value.Contains('?', StringComparison.Ordinal) && !value.Contains('#', StringComparison.Ordinal);

    /// <summary>The default for a <c>WEBSITE_HOSTNAME</c> (the host name the Functions platform gives the app).</summary>
    public static string DefaultFor(string? websiteHostName)
    {
        if (string.IsNullOrWhiteSpace(websiteHostName))
        {
            return LocalBaseUrl;
        }

        var host = websiteHostName.Trim();
        var name = Uri.TryCreate("http://" + host, UriKind.Absolute, out var parsed) ? parsed.Host : host;
        var loopback = name.Equals("localhost", StringComparison.OrdinalIgnoreCase)
            || (IPAddress.TryParse(name.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address));
        return (loopback ? "http://" : "https://") + host;
    }
}

public static class ApiRegistration
{
    /// <summary>Binds and validates <see cref="ApiOptions"/>; an unset base URL takes its default from <c>WEBSITE_HOSTNAME</c>.</summary>
    public static IServiceCollection AddApiOptions(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ApiOptions>().BindConfiguration(ApiOptions.Section)
            .PostConfigure(o =>
            {
                if (string.IsNullOrWhiteSpace(o.PublicBaseUrl))
                {
                    o.PublicBaseUrl = ApiOptions.DefaultFor(configuration["WEBSITE_HOSTNAME"]);
                }
            })
            .Validate(o => ApiOptions.IsValidBaseUrl(o.PublicBaseUrl),
                "Api:PublicBaseUrl (or WEBSITE_HOSTNAME) must make an absolute http(s) URL without user info, query or fragment.")
            .ValidateOnStart();
        return services;
    }
}
