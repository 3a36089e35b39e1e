using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace TenantDb.LocalHost.Tests;

[Trait("Category", Tier.Database)]
public sealed class HttpFunctionTests(LocalHostFixture host) : IClassFixture<LocalHostFixture>
{
    [Fact]
    public async Task HttpFunction_RouteValuesAndJsonBody_Returns200Json()
    {
        using var response = await host.Client.PutAsJsonAsync("/api/tenants/acme/items/42", new { name = "Ada", quantity = 3 });

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(42, body.GetProperty("id").GetInt64());
        Assert.Equal("acme", body.GetProperty("tenant").GetString());
        Assert.Equal(3, body.GetProperty("quantity").GetInt32());
        Assert.Equal("Hello, Ada!", body.GetProperty("greeting").GetString());
    }

    [Theory]
    [InlineData("{\"name\": \"Ada\", ")]
    [InlineData("")]
    public async Task HttpFunction_MalformedJson_Returns400ProblemJson(string payload)
    {
        using StringContent content = new(payload, Encoding.UTF8, "application/json");

        using var response = await host.Client.PutAsync("/api/tenants/acme/items/42", content);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(400, problem.GetProperty("status").GetInt32());
    }

    [Fact]
    public async Task HttpFunction_RouteValueOfWrongType_Returns400()
    {
        using var response = await host.Client.PutAsJsonAsync("/api/tenants/acme/items/not-a-number", new { name = "Ada", quantity = 3 });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    [Theory]
    [InlineData("/api/secret", null, HttpStatusCode.Unauthorized)]
    [InlineData("/api/secret", "wrong-key", HttpStatusCode.Unauthorized)]
    [InlineData("/api/secret", LocalHostFixture.FunctionKey, HttpStatusCode.OK)]
    [InlineData("/api/secret", LocalHostFixture.MasterKey, HttpStatusCode.OK)]
    [InlineData("/api/admin/ping", null, HttpStatusCode.Unauthorized)]
    [InlineData("/api/admin/ping", LocalHostFixture.FunctionKey, HttpStatusCode.Unauthorized)]
    [InlineData("/api/admin/ping", LocalHostFixture.MasterKey, HttpStatusCode.OK)]
    public async Task HttpFunction_KeyInHeader_AuthorizedByLevel(string path, string? key, HttpStatusCode expected)
    {
        using HttpRequestMessage request = new(HttpMethod.Get, path);
        if (key is not null)
        {
            request.Headers.Add("x-functions-key", key);
        }

        using var response = await host.Client.SendAsync(request);

        Assert.Equal(expected, response.StatusCode);
        if (expected == HttpStatusCode.Unauthorized)
        {
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }
    }

    [Fact]
    public async Task HttpFunction_KeyInCodeQuery_Authorized()
    {
        using var response = await host.Client.GetAsync($"/api/secret?code={LocalHostFixture.FunctionKey}");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("function", body.GetProperty("secret").GetString());
    }

    [Fact]
    public async Task HttpFunction_WrongMethod_Returns405()
    {
        using var response = await host.Client.GetAsync("/api/tenants/acme/items/42");

        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
    }

    [Fact]
    public async Task WrongMethodAndUnknownPath_AnswerProblemJson_NotAnEmptyBody()
    {
        // Found by the hostile-input proof: routing's own 404/405 came back with no body and no content type.
        using var wrongMethod = await host.Client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, "/api/tenants/acme/items/42"));
        using var unknown = await host.Client.GetAsync("/api/no/such/route");

        foreach (var (response, status) in new[] { (wrongMethod, HttpStatusCode.MethodNotAllowed), (unknown, HttpStatusCode.NotFound) })
        {
            Assert.Equal(status, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            var body = await response.Content.ReadFromJsonAsync<JsonElement>();
            Assert.Equal((int)status, body.GetProperty("status").GetInt32());
        }
    }

    [Fact]
    public async Task TimerFunction_ScheduleFromSetting_RunsEverySecond()
    {
        var count = 0;
        using CancellationTokenSource timeout = new(TimeSpan.FromSeconds(20));
        while (count < 2)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(500), timeout.Token);
            var body = await host.Client.GetFromJsonAsync<JsonElement>("/api/ticks", timeout.Token);
            count = body.GetProperty("count").GetInt32();
        }

        Assert.True(count >= 2);
    }

    [Fact]
    public async Task AdminFunctions_MasterKey_RunsTheTimerNow()
    {
        using CancellationTokenSource timeout = new(TimeSpan.FromSeconds(20));
        var before = (await host.Client.GetFromJsonAsync<JsonElement>("/api/yearly", timeout.Token)).GetProperty("count").GetInt32();
        using HttpRequestMessage request = new(HttpMethod.Post, "/admin/functions/Yearly") { Content = JsonContent.Create(new { input = "" }) };
        request.Headers.Add("x-functions-key", LocalHostFixture.MasterKey);

        using var response = await host.Client.SendAsync(request, timeout.Token);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var count = before;
        while (count == before)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(100), timeout.Token);
            count = (await host.Client.GetFromJsonAsync<JsonElement>("/api/yearly", timeout.Token)).GetProperty("count").GetInt32();
        }

        Assert.Equal(before + 1, count);
    }

    [Theory]
    [InlineData("Yearly", null, "{\"input\": \"\"}", HttpStatusCode.Unauthorized)]
    [InlineData("Yearly", LocalHostFixture.FunctionKey, "{\"input\": \"\"}", HttpStatusCode.Unauthorized)]
    [InlineData("NoSuchFunction", LocalHostFixture.MasterKey, "{\"input\": \"\"}", HttpStatusCode.NotFound)]
    [InlineData("Greet", LocalHostFixture.MasterKey, "{\"input\": \"\"}", HttpStatusCode.NotFound)]
    [InlineData("Yearly", LocalHostFixture.MasterKey, "not json", HttpStatusCode.BadRequest)]
    public async Task AdminFunctions_Refused_AnswersProblem(string name, string? key, string body, HttpStatusCode status)
    {
        var before = (await host.Client.GetFromJsonAsync<JsonElement>("/api/yearly")).GetProperty("count").GetInt32();
        using HttpRequestMessage request = new(HttpMethod.Post, "/admin/functions/" + name) { Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json") };
        if (key is not null)
        {
            request.Headers.Add("x-functions-key", key);
        }

        using var response = await host.Client.SendAsync(request);

        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        await Task.Delay(TimeSpan.FromMilliseconds(300));
        Assert.Equal(before, (await host.Client.GetFromJsonAsync<JsonElement>("/api/yearly")).GetProperty("count").GetInt32());
    }

    [Theory]
    [InlineData("boom", HttpStatusCode.InternalServerError, null)]
    [InlineData("timeout", HttpStatusCode.ServiceUnavailable, "7")]
    public async Task ThrowingFunction_AnswersTheAppsMiddlewareProblem(string kind, HttpStatusCode status, string? retryAfter)
    {
        using var response = await host.Client.GetAsync("/api/boom/" + kind);

        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(retryAfter, response.Headers.RetryAfter?.Delta?.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var text = await response.Content.ReadAsStringAsync();
        Assert.Equal("sample-middleware", JsonDocument.Parse(text).RootElement.GetProperty("type").GetString());
        Assert.DoesNotContain("secret-detail", text, StringComparison.Ordinal);
    }
}
