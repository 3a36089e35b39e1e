using System.Text;
using System.Text.Json;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// Issue 9 items 4-6 against the real app on LocalHost: no answer carries a function or master key, no URL follows the
/// request's Host header, and the Durable management API takes only the system or master key.
/// </summary>
[Trait("Category", Tier.EndToEnd)]
public sealed class KeysEndToEndTests
{
    private const string EvilHost = "evil.example";
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(120);

    private static object Allocation(Guid instance, string tier = "standard") =>
        new { instance_id = instance.ToString(), customer_id = Guid.NewGuid().ToString(), plan_tier = tier };

    /// <summary>Sends with <c>Host: evil.example</c>, the key in the header or in <c>?code=</c>; returns the status, the body and everything on the wire.</summary>
    private static async Task<(int Status, JsonElement Body, string Wire)> SendAsync(
        AllocatorHost host, HttpMethod method, string path, string key, object? body = null, bool keyInQuery = false)
    {
        using var request = host.Request(method, keyInQuery ? $"{path}?code={Uri.EscapeDataString(key)}" : path, keyInQuery ? null : key, body);
        request.Headers.Host = EvilHost;
        using var response = await host.Client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        using var doc = JsonDocument.Parse(string.IsNullOrWhiteSpace(text) ? "null" : text);
        return ((int)response.StatusCode, doc.RootElement.Clone(), $"{response.Headers}{response.Content.Headers}\n{text}");
    }

    private static void AssertClean(string what, string wire)
    {
        // The messages name the answer, never print it: a claim's body holds a password.
        Assert.False(wire.Contains(AllocatorHost.FunctionKey, StringComparison.Ordinal), $"{what} carries the function key");
        Assert.False(wire.Contains(AllocatorHost.MasterKey, StringComparison.Ordinal), $"{what} carries the master key");
        Assert.False(wire.Contains(EvilHost, StringComparison.OrdinalIgnoreCase), $"{what} has a URL on the request's Host");
    }

    [Fact]
    [Trait("Issue9", "4")]
    [Trait("Issue9", "5")]
    public async Task EveryAnswer_AllocateProvisionClaimRotate_NoKeyAndNoUrlOnTheRequestsHost()
    {
        await using var host = await AllocatorHost.StartAsync();
        var first = Guid.NewGuid();
        var origin = host.BaseAddress.ToString().TrimEnd('/');

        var (allocated, accepted, allocateWire) = await SendAsync(host, HttpMethod.Post, "/api/database/allocate", AllocatorHost.FunctionKey, Allocation(first));
        Assert.Equal(202, allocated);
        AssertClean("allocate 202", allocateWire);
        var statusUri = accepted.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!;
        Assert.StartsWith(origin + "/runtime/webhooks/durabletask/instances/", statusUri);

        var (dedicated, dedicatedRun, dedicatedWire) = await SendAsync(host, HttpMethod.Post, "/api/database/provision-dedicated", AllocatorHost.FunctionKey,
            Allocation(Guid.NewGuid(), "premium"), keyInQuery: true);
        Assert.Equal(202, dedicated);
        AssertClean("provision-dedicated 202", dedicatedWire);

        var (provisioning, _, provisionWire) = await SendAsync(host, HttpMethod.Post, "/api/database/admin/provision-pool", AllocatorHost.MasterKey);
        Assert.Equal(202, provisioning);
        AssertClean("admin provision-pool 202", provisionWire);

        var done = await host.WaitForOrchestrationAsync(statusUri, RunTimeout);
        Assert.Equal("Completed", done.GetProperty("runtimeStatus").GetString());
        AssertClean("the orchestration's status", done.GetRawText());
        var claimUrl = done.GetProperty("output").GetProperty("allocation").GetProperty("credentials").GetProperty("claim_url").GetString()!;
        Assert.StartsWith(origin + "/api/", claimUrl);

        var (claimed, _, claimWire) = await SendAsync(host, HttpMethod.Post, new Uri(claimUrl).AbsolutePath, AllocatorHost.FunctionKey, keyInQuery: true);
        Assert.Equal(200, claimed);
        AssertClean("claim 200", claimWire);

        var (rotated, rotation, rotateWire) = await SendAsync(host, HttpMethod.Post, $"/api/database/credentials/{first}/rotate", AllocatorHost.FunctionKey);
        Assert.Equal(200, rotated);
        AssertClean("rotate 200", rotateWire);
        Assert.StartsWith(origin + "/api/", rotation.GetProperty("credentials").GetProperty("claim_url").GetString());

        var (placed, second, placedWire) = await SendAsync(host, HttpMethod.Post, "/api/database/allocate", AllocatorHost.FunctionKey, Allocation(Guid.NewGuid()));
        Assert.Equal(200, placed);
        AssertClean("allocate 200", placedWire);
        Assert.StartsWith(origin + "/api/", second.GetProperty("credentials").GetProperty("claim_url").GetString());

        // The dedicated server's run ends before the host does (no server left half-made by the test's teardown).
        var dedicatedDone = await host.WaitForOrchestrationAsync(dedicatedRun.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!, RunTimeout);
        Assert.Equal("Completed", dedicatedDone.GetProperty("runtimeStatus").GetString());
        AssertClean("the dedicated run's status", dedicatedDone.GetRawText());
    }

    [Fact]
    [Trait("Issue9", "6")]
    public async Task ManagementApi_FunctionKey401_SystemAndMasterKeysWork_RaiseEventBodyCapped()
    {
        await using var host = await AllocatorHost.StartAsync();
        var (status, accepted) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate", body: Allocation(Guid.NewGuid()));
        Assert.Equal(202, status);
        var statusUri = accepted.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!;
        var id = accepted.GetProperty("orchestration").GetProperty("id").GetString()!;
        var instance = $"/runtime/webhooks/durabletask/instances/{Uri.EscapeDataString(id)}";

        async Task<int> Code(HttpMethod method, string path, string? key, bool inQuery, HttpContent? content = null)
        {
            var separator = path.Contains('?', StringComparison.Ordinal) ? "&" : "?";
            using var request = host.Request(method, inQuery && key is not null ? $"{path}{separator}code={Uri.EscapeDataString(key)}" : path, inQuery ? null : key);
            request.Content = content;
            using var response = await host.Client.SendAsync(request);
            return (int)response.StatusCode;
        }

        foreach (var inQuery in new[] { true, false })
        {
            Assert.Contains(await Code(HttpMethod.Get, instance, AllocatorHost.FunctionKey, inQuery), new[] { 401, 403 });
            Assert.Contains(await Code(HttpMethod.Post, instance + "/terminate?reason=x", AllocatorHost.FunctionKey, inQuery), new[] { 401, 403 });
            Assert.Contains(await Code(HttpMethod.Post, instance + "/raiseEvent/x", AllocatorHost.FunctionKey, inQuery, new StringContent("1", Encoding.UTF8, "application/json")), new[] { 401, 403 });
            Assert.Contains(await Code(HttpMethod.Delete, instance, AllocatorHost.FunctionKey, inQuery), new[] { 401, 403 });
            Assert.Contains(await Code(HttpMethod.Get, instance, AllocatorHost.MasterKey, inQuery), new[] { 200, 202 });
            Assert.Contains(await Code(HttpMethod.Get, instance, AllocatorHost.SystemKey, inQuery), new[] { 200, 202 });
        }

        using (var viaStatusUrl = await host.Client.GetAsync(statusUri))
        {
            Assert.Contains((int)viaStatusUrl.StatusCode, new[] { 200, 202 });
        }

        var twentyMb = new ByteArrayContent(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new string('a', 20 * 1024 * 1024))));
        twentyMb.Headers.ContentType = new("application/json");
        Assert.Equal(413, await Code(HttpMethod.Post, instance + "/raiseEvent/x", AllocatorHost.SystemKey, inQuery: true, twentyMb));

        var done = await host.WaitForOrchestrationAsync(statusUri, RunTimeout);
        Assert.Equal("Completed", done.GetProperty("runtimeStatus").GetString());
    }
}
