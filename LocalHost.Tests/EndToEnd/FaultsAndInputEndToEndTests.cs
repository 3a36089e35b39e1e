using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>Over real HTTP through LocalHost: strict bodies (415, 400) and a stopped catalog answering 503 with Retry-After.</summary>
[Trait("Category", Tier.EndToEnd)]
public sealed class FaultsAndInputEndToEndTests
{
    private static async Task<(int Status, HttpResponseHeaders Headers, string? ContentType, string Body)> RawAsync(
        AllocatorHost host, HttpMethod method, string path, string? key = AllocatorHost.FunctionKey, string? body = null, string? contentType = null)
    {
        using var request = host.Request(method, path, key);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8);
            request.Content.Headers.ContentType = contentType is null ? null : MediaTypeHeaderValue.Parse(contentType);
        }

        using var response = await host.Client.SendAsync(request);
        return ((int)response.StatusCode, response.Headers, response.Content.Headers.ContentType?.MediaType, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    [Trait("Issue9", "18")]
    [Trait("Issue9", "21")]
    public async Task LocalHost_StrictBodies_AndCatalogDown_Answer4xxAnd503NotLocalHost500()
    {
        await using var host = await AllocatorHost.StartAsync();
        var allocate = JsonSerializer.Serialize(new { instance_id = Guid.NewGuid(), customer_id = Guid.NewGuid(), plan_tier = "standard" });
        var register = "{\"name\":\"strict\",\"host\":\"127.0.0.1\",\"port\":5432,\"admin_user\":\"postgres\",\"admin_password\":\"x\",\"max_instances\":\"5\"}";

        var text = await RawAsync(host, HttpMethod.Post, "/api/database/allocate", body: allocate, contentType: "text/plain");
        var stringNumber = await RawAsync(host, HttpMethod.Post, "/api/database/admin/pools/register", AllocatorHost.MasterKey, register, "application/json");

        Assert.Equal(415, text.Status);
        Assert.Equal("application/problem+json", text.ContentType);
        Assert.Equal(400, stringNumber.Status);
        Assert.Contains("urn:tenantdb:problem:malformed-json", stringNumber.Body);

        var catalog = Path.Combine(Path.GetDirectoryName(host.PoolsRoot)!, "catalog");
        await host.StopServerAsync(catalog);
        var id = Guid.NewGuid();
        foreach (var (method, path) in new[]
        {
            (HttpMethod.Delete, $"/api/database/allocations/{id}"),
            (HttpMethod.Post, $"/api/database/credentials/{id}/rotate"),
            (HttpMethod.Post, $"/api/database/credentials/{id}/claim"),
        })
        {
            var answer = await RawAsync(host, method, path);

            Assert.True(503 == answer.Status, $"{method} {path}: {answer.Status} {answer.Body}");
            Assert.Equal("application/problem+json", answer.ContentType);
            Assert.NotNull(answer.Headers.RetryAfter);
            Assert.Contains("urn:tenantdb:problem:database-unavailable", answer.Body);
            Assert.DoesNotContain("Host=", answer.Body);
        }
    }
}
