using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;

namespace TenantDb.Functions.Api;

/// <summary>
/// The operators' dashboard page: one self-contained HTML document (its style and script inline, nothing fetched from
/// elsewhere) that holds no data. Its script asks for the admin key, keeps it in the tab's session storage and reads the
/// admin JSON routes with it in the <c>x-functions-key</c> header. The Content-Security-Policy allows exactly the inline
/// style and script by their SHA-256 and requests to this origin only.
/// </summary>
public static class DashboardPage
{
    private const string ResourcePrefix = "TenantDb.Functions.Dashboard.";
    private const string StyleSlot = "<style></style>";
    private const string ScriptSlot = "<script></script>";

    private static readonly Lazy<(string Html, string Policy)> Page = new(Compose);

    public static string Html => Page.Value.Html;

    public static string ContentSecurityPolicy => Page.Value.Policy;

    /// <summary>The page with its headers: the policy, no caching, no framing, no sniffing, no referrer.</summary>
    public static IActionResult Respond(HttpResponse response)
    {
        var headers = response.Headers;
        headers.ContentSecurityPolicy = ContentSecurityPolicy;
        headers.CacheControl = "no-store";
        headers.XContentTypeOptions = "nosniff";
        headers.XFrameOptions = "DENY";
        headers["Referrer-Policy"] = "no-referrer";
        return new ContentResult { Content = Html, ContentType = "text/html; charset=utf-8", StatusCode = StatusCodes.Status200OK };
    }

    private static (string, string) Compose()
    {
        var css = Read("dashboard.css");
        var js = Read("dashboard.js");
        var html = Read("dashboard.html");
        if (!html.Contains(StyleSlot, StringComparison.Ordinal) || !html.Contains(ScriptSlot, StringComparison.Ordinal))
        {
            throw new InvalidOperationException("dashboard.html lacks its <style></style> or <script></script> slot.");
        }

        html = html.Replace(StyleSlot, $"<style>{css}</style>", StringComparison.Ordinal)
            .Replace(ScriptSlot, $"<script>{js}</script>", StringComparison.Ordinal);
        var policy = $"default-src 'none'; script-src '{Hash(js)}'; style-src '{Hash(css)}'; connect-src 'self'; img-src 'none'; "
            + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
        return (html, policy);
    }

    private static string Hash(string inline) => "sha256-" + Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(inline)));

    private static string Read(string name)
    {
        using var stream = typeof(DashboardPage).Assembly.GetManifestResourceStream(ResourcePrefix + name)
            ?? throw new InvalidOperationException($"The dashboard's {name} is not embedded.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }
}
