using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using TenantDb.Functions.Api;

namespace TenantDb.Functions.Tests.Api;

/// <summary>
/// The operators' page as served: self-contained, its inline code admitted by the policy's hashes and nothing else, data
/// written as text only, no key in a URL. (LocalHost.Tests' DashboardEndToEndTests renders it in Chromium.)
/// </summary>
[Trait("Category", Tier.Unit)]
public sealed partial class DashboardPageTests
{
    [GeneratedRegex("<script>(.*?)</script>", RegexOptions.Singleline)]
    private static partial Regex Script();

    [GeneratedRegex("<style>(.*?)</style>", RegexOptions.Singleline)]
    private static partial Regex Style();

    private static string Hash(string text) => "'sha256-" + Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(text))) + "'";

    [Fact]
    public void Page_InlineScriptAndStyle_AreTheOnlyCodeThePolicyAdmits()
    {
        var script = Assert.Single(Script().Matches(DashboardPage.Html)).Groups[1].Value;
        var style = Assert.Single(Style().Matches(DashboardPage.Html)).Groups[1].Value;
        var policy = DashboardPage.ContentSecurityPolicy;

        Assert.Contains("default-src 'none'", policy, StringComparison.Ordinal);
        Assert.Contains($"script-src {Hash(script)};", policy, StringComparison.Ordinal);
        Assert.Contains($"style-src {Hash(style)};", policy, StringComparison.Ordinal);
        Assert.Contains("connect-src 'self';", policy, StringComparison.Ordinal);
        Assert.Contains("frame-ancestors 'none'", policy, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe", policy, StringComparison.Ordinal);
        Assert.True(script.Length > 1000 && style.Length > 500, "the page's script or style is missing");
    }

    [Theory]
    [InlineData("src=")]
    [InlineData("href=")]
    [InlineData("http:")]
    [InlineData("https:")]
    [InlineData("@import")]
    [InlineData("url(")]
    public void Page_ReferencesNothingElsewhere(string reference) =>
        Assert.DoesNotContain(reference, DashboardPage.Html, StringComparison.OrdinalIgnoreCase);

    [Theory]
    [InlineData("innerHTML")]
    [InlineData("outerHTML")]
    [InlineData("insertAdjacentHTML")]
    [InlineData("document.write")]
    [InlineData("eval(")]
    [InlineData("new Function")]
    [InlineData("localStorage")]
    [InlineData("code=")]
    public void Script_WritesDataAsTextAndKeepsTheKeyOutOfUrlsAndDisks(string forbidden) =>
        Assert.DoesNotContain(forbidden, Assert.Single(Script().Matches(DashboardPage.Html)).Groups[1].Value, StringComparison.Ordinal);

    [Fact]
    public void Respond_ServesTheHtmlWithThePolicyAndNoCaching()
    {
        var context = new DefaultHttpContext();

        var result = Assert.IsType<ContentResult>(DashboardPage.Respond(context.Response));

        Assert.Equal(StatusCodes.Status200OK, result.StatusCode);
        Assert.Equal("text/html; charset=utf-8", result.ContentType);
        Assert.Equal(DashboardPage.Html, result.Content);
        var headers = context.Response.Headers;
        Assert.Equal(DashboardPage.ContentSecurityPolicy, headers.ContentSecurityPolicy.ToString());
        Assert.Equal("no-store", headers.CacheControl.ToString());
        Assert.Equal("nosniff", headers.XContentTypeOptions.ToString());
        Assert.Equal("DENY", headers.XFrameOptions.ToString());
        Assert.Equal("no-referrer", headers["Referrer-Policy"].ToString());
    }
}
