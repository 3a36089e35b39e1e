using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace TenantDb.LocalHost.Tests;

[Trait("Category", Tier.Database)]
public sealed class DurableFunctionTests(LocalHostFixture host) : IClassFixture<LocalHostFixture>
{
    private const string Management = "/runtime/webhooks/durabletask/instances";

    [Fact]
    public async Task Orchestration_StartedOverHttp_CompletesThroughStatusRoute()
    {
        var id = "greet-" + Guid.NewGuid().ToString("N");

        using var started = await host.Client.PostAsJsonAsync($"/api/greetings/{id}", new { name = "Ada", delaySeconds = 2 });
        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        Assert.Contains($"{Management}/{id}?", started.Headers.Location?.ToString());

        (var waitingStatus, var waiting) = await PollStatusAsync(id, b => b.GetProperty("customStatus").ValueKind == JsonValueKind.String);
        Assert.Equal(HttpStatusCode.Accepted, waitingStatus);
        Assert.Equal("Running", waiting.GetProperty("runtimeStatus").GetString());
        Assert.Equal("waiting", waiting.GetProperty("customStatus").GetString());

        (var status, var body) = await PollStatusAsync(id, "Completed");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("GreetingOrchestrator", body.GetProperty("name").GetString());
        Assert.Equal(id, body.GetProperty("instanceId").GetString());
        Assert.Equal("Hello, Ada! Hello, Ada again!", body.GetProperty("output").GetString());
        Assert.Equal("Ada", body.GetProperty("input").GetProperty("Name").GetString());
        Assert.Equal("waiting", body.GetProperty("customStatus").GetString());
        Assert.True(DateTime.Parse(body.GetProperty("lastUpdatedTime").GetString()!) >= DateTime.Parse(body.GetProperty("createdTime").GetString()!));
    }

    [Fact]
    public async Task ManagementRoute_WithoutKey_Returns401()
    {
        using var response = await host.Client.GetAsync($"{Management}/any");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task ManagementRoute_UnknownInstance_Returns404()
    {
        using var response = await host.Client.GetAsync($"{Management}/missing-{Guid.NewGuid():N}?code={LocalHostFixture.SystemKey}");
        using var purge = await host.Client.DeleteAsync($"{Management}/missing-{Guid.NewGuid():N}?code={LocalHostFixture.SystemKey}");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, purge.StatusCode);
        // Found by the hostile-input proof: these answered with no body; every error is problem+json.
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("application/problem+json", purge.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Entity_SignalledTwice_StateReadThroughClient()
    {
        var key = Guid.NewGuid().ToString("N");
        using var notYet = await host.Client.GetAsync($"/api/counters/{key}");
        Assert.Equal(HttpStatusCode.NotFound, notYet.StatusCode);

        using var first = await host.Client.PostAsync($"/api/counters/{key}/add/5", null);
        using var second = await host.Client.PostAsync($"/api/counters/{key}/add/7", null);
        Assert.Equal(HttpStatusCode.Accepted, first.StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, second.StatusCode);

        var value = 0;
        using CancellationTokenSource timeout = new(TimeSpan.FromSeconds(45));
        while (value != 12)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(500), timeout.Token);
            using var response = await host.Client.GetAsync($"/api/counters/{key}", timeout.Token);
            if (response.StatusCode == HttpStatusCode.OK)
            {
                value = (await response.Content.ReadFromJsonAsync<JsonElement>(timeout.Token)).GetProperty("value").GetInt32();
            }
        }

        Assert.Equal(12, value);
    }

    [Fact]
    public async Task Orchestration_TerminatedThenPurged_GoneFromStatusRoute()
    {
        var id = await StartApprovalAsync();

        using var terminate = await host.Client.PostAsync($"{Management}/{id}/terminate?reason=test&code={LocalHostFixture.SystemKey}", null);
        Assert.Equal(HttpStatusCode.Accepted, terminate.StatusCode);
        (var status, var body) = await PollStatusAsync(id, "Terminated");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Terminated", body.GetProperty("runtimeStatus").GetString());

        using var again = await host.Client.PostAsync($"{Management}/{id}/terminate?code={LocalHostFixture.SystemKey}", null);
        Assert.Equal(HttpStatusCode.Gone, again.StatusCode);

        using var purge = await host.Client.DeleteAsync($"{Management}/{id}?code={LocalHostFixture.MasterKey}");
        Assert.Equal(HttpStatusCode.OK, purge.StatusCode);
        Assert.Equal(1, (await purge.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("instancesDeleted").GetInt32());

        using var gone = await host.Client.GetAsync($"{Management}/{id}?code={LocalHostFixture.SystemKey}");
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
    }

    [Fact]
    public async Task Orchestration_EventRaisedThroughRoute_CompletesWithPayload()
    {
        var id = await StartApprovalAsync();

        using var running = await host.Client.GetAsync($"{Management}/{id}?code={LocalHostFixture.SystemKey}");
        Assert.Equal(HttpStatusCode.Accepted, running.StatusCode);
        using var raised = await host.Client.PostAsJsonAsync($"{Management}/{id}/raiseEvent/Approval?code={LocalHostFixture.SystemKey}", true);
        Assert.Equal(HttpStatusCode.Accepted, raised.StatusCode);

        (var status, var body) = await PollStatusAsync(id, "Completed");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(body.GetProperty("output").GetBoolean());
    }

    [Fact]
    [Trait("Issue9", "4")]
    public async Task DurableClient_ManagementPayload_OnTheHostsBaseWithTheSystemKey()
    {
        var id = "greet-" + Guid.NewGuid().ToString("N");

        using var started = await host.Client.PostAsJsonAsync($"/api/greetings/{id}", new { name = "Ada", delaySeconds = 0 });

        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        var location = started.Headers.Location!.ToString();
        Assert.StartsWith($"{host.Client.BaseAddress!.ToString().TrimEnd('/')}{Management}/{id}?", location);
        Assert.Contains("code=" + LocalHostFixture.SystemKey, location);
        Assert.DoesNotContain(LocalHostFixture.FunctionKey, location);
        Assert.DoesNotContain(LocalHostFixture.MasterKey, location);
        using var status = await host.Client.GetAsync(location);
        Assert.True(status.StatusCode is HttpStatusCode.OK or HttpStatusCode.Accepted, $"status URL answered {status.StatusCode}");
    }

    [Theory]
    [Trait("Issue9", "6")]
    [InlineData("code")]
    [InlineData("x-functions-key")]
    public async Task ManagementRoutes_FunctionKey_401OnEveryRouteAndNothingChanges(string keyIn)
    {
        var id = await StartApprovalAsync();

        HttpStatusCode[] answers =
        [
            await SendAsync(HttpMethod.Get, $"{Management}/{id}", LocalHostFixture.FunctionKey, keyIn),
            await SendAsync(HttpMethod.Post, $"{Management}/{id}/terminate?reason=x", LocalHostFixture.FunctionKey, keyIn),
            await SendAsync(HttpMethod.Post, $"{Management}/{id}/raiseEvent/Approval", LocalHostFixture.FunctionKey, keyIn, JsonContent.Create(true)),
            await SendAsync(HttpMethod.Delete, $"{Management}/{id}", LocalHostFixture.FunctionKey, keyIn),
        ];

        Assert.All(answers, a => Assert.True(a is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden, $"a function key got {a}"));
        Assert.Equal(HttpStatusCode.Accepted, await SendAsync(HttpMethod.Get, $"{Management}/{id}", LocalHostFixture.SystemKey, keyIn));
    }

    [Theory]
    [Trait("Issue9", "6")]
    [InlineData(LocalHostFixture.SystemKey, "code")]
    [InlineData(LocalHostFixture.SystemKey, "x-functions-key")]
    [InlineData(LocalHostFixture.MasterKey, "code")]
    [InlineData(LocalHostFixture.MasterKey, "x-functions-key")]
    public async Task ManagementRoutes_SystemOrMasterKey_Accepted(string key, string keyIn)
    {
        var id = await StartApprovalAsync();

        Assert.Equal(HttpStatusCode.Accepted, await SendAsync(HttpMethod.Get, $"{Management}/{id}", key, keyIn));
        Assert.Equal(HttpStatusCode.Accepted, await SendAsync(HttpMethod.Post, $"{Management}/{id}/terminate?reason=test", key, keyIn));
        (var status, _) = await PollStatusAsync(id, "Terminated");
        Assert.Equal(HttpStatusCode.OK, status);
    }

    [Theory]
    [Trait("Issue9", "6")]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ManagementRoute_RaiseEventBodyOver64KB_413ProblemJsonAndNotDelivered(bool withContentLength)
    {
        var id = await StartApprovalAsync();
        var huge = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new string('a', 100_000)));
        HttpContent content = withContentLength
            ? new ByteArrayContent(huge)
            : new StreamContent(new NonSeekableStream(huge)); // chunked: no Content-Length to trust
        content.Headers.ContentType = new("application/json");

        using HttpRequestMessage request = new(HttpMethod.Post, $"{Management}/{id}/raiseEvent/Approval?code={LocalHostFixture.SystemKey}") { Content = content };
        using var response = await host.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Equal(HttpStatusCode.Accepted, await SendAsync(HttpMethod.Get, $"{Management}/{id}", LocalHostFixture.SystemKey, "code"));
    }

    [Fact]
    [Trait("Issue9", "5")]
    public async Task ManagementRoute_HostHeaderEvilExample_LocationNeitherOnThatHostNorWithTheCallersKey()
    {
        var id = await StartApprovalAsync();
        using HttpRequestMessage request = new(HttpMethod.Get, $"{Management}/{id}?code={LocalHostFixture.MasterKey}");
        request.Headers.Host = "evil.example";

        using var response = await host.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var headers = response.Headers.ToString() + response.Content.Headers;
        Assert.DoesNotContain("evil.example", headers);
        Assert.DoesNotContain(LocalHostFixture.MasterKey, headers);
    }

    private async Task<HttpStatusCode> SendAsync(HttpMethod method, string path, string key, string keyIn, HttpContent? content = null)
    {
        var separator = path.Contains('?', StringComparison.Ordinal) ? "&" : "?";
        using HttpRequestMessage request = new(method, keyIn == "code" ? $"{path}{separator}code={Uri.EscapeDataString(key)}" : path) { Content = content };
        if (keyIn != "code")
        {
            request.Headers.Add("x-functions-key", key);
        }

        using var response = await host.Client.SendAsync(request);
        return response.StatusCode;
    }

    /// <summary>A body stream without a length, so the client sends it chunked.</summary>
    private sealed class NonSeekableStream(byte[] data) : MemoryStream(data)
    {
        public override bool CanSeek => false;
    }

    private async Task<string> StartApprovalAsync()
    {
        var id = "approval-" + Guid.NewGuid().ToString("N");
        using HttpRequestMessage request = new(HttpMethod.Post, $"/api/approvals/{id}");
        request.Headers.Add("x-functions-key", LocalHostFixture.FunctionKey);
        using var response = await host.Client.SendAsync(request);
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        Assert.Equal("Running", (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString());
        return id;
    }

    private Task<(HttpStatusCode Status, JsonElement Body)> PollStatusAsync(string id, string runtimeStatus) =>
        PollStatusAsync(id, b => b.GetProperty("runtimeStatus").GetString() == runtimeStatus);

    private async Task<(HttpStatusCode Status, JsonElement Body)> PollStatusAsync(string id, Func<JsonElement, bool> done)
    {
        using CancellationTokenSource timeout = new(TimeSpan.FromSeconds(60));
        while (true)
        {
            using var response = await host.Client.GetAsync($"{Management}/{id}?code={LocalHostFixture.SystemKey}", timeout.Token);
            var body = await response.Content.ReadFromJsonAsync<JsonElement>(timeout.Token);
            if (done(body))
            {
                return (response.StatusCode, body);
            }

            Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
            await Task.Delay(TimeSpan.FromMilliseconds(200), timeout.Token);
        }
    }
}
