using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Callbacks;
using TenantDb.Functions.Domain;
using TenantDb.Functions.Drivers;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Callbacks;

/// <summary>
/// Issue 14 item 6: an allocation's <c>callback_url</c> is checked and stored, and <see cref="TenantCallbacks"/> POSTs a signed notice
/// to it — here a real HTTP listener on 127.0.0.1 that checks the HMAC-SHA256 signature over the exact body bytes.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class TenantCallbacksTests(PostgresFixture fixture)
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly byte[] Key = Enumerable.Range(1, 32).Select(i => (byte)(i * 7)).ToArray();

    /// <summary>A loopback HTTP server that records what it receives and answers with the next status of its script.</summary>
    private sealed class Receiver : IAsyncDisposable
    {
        private readonly HttpListener _listener = new();
        private readonly Func<int, int> _status;
        private readonly Task _loop;

        public Receiver(Func<int, int> status)
        {
            _status = status;
            Port = LocalPostgres.FreeLoopbackPort();
            _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
            _listener.Start();
            _loop = Task.Run(LoopAsync);
        }

        public int Port { get; }
        public string Url => $"http://127.0.0.1:{Port}/hooks/tenant";
        public ConcurrentQueue<(string Method, string Path, string? ContentType, string? Signature, byte[] Body)> Received { get; } = new();

        private async Task LoopAsync()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }

                using var body = new MemoryStream();
                await context.Request.InputStream.CopyToAsync(body);
                Received.Enqueue((context.Request.HttpMethod, context.Request.Url!.AbsolutePath, context.Request.ContentType,
                    context.Request.Headers[TenantCallbacks.SignatureHeader], body.ToArray()));
                context.Response.StatusCode = _status(Received.Count);
                context.Response.Close();
            }
        }

        public async ValueTask DisposeAsync()
        {
            _listener.Stop();
            _listener.Close();
            await _loop;
        }
    }

    private Task<TestApp> StartAsync(bool withKey = true, bool allowLoopback = true) => TestApp.StartAsync(fixture, new Dictionary<string, string?>
    {
        ["Callbacks:Key"] = withKey ? Convert.ToBase64String(Key) : null,
        ["Callbacks:Backoff"] = "00:00:00.050",
        ["Callbacks:Timeout"] = "00:00:02",
        ["Api:AllowLoopbackCallbacks"] = allowLoopback ? "true" : "false",
    });

    private async Task<AllocationOutcome> AllocateAsync(TestApp app, string? callbackUrl)
    {
        await app.AddPoolAsync(fixture.Pools[1], 10);
        return await app.Allocation.AllocateAsync(
            new AllocationRequest(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "standard", callbackUrl), None);
    }

    [Fact]
    [Trait("Issue", "14")]
    public async Task Notify_LoopbackCallback_OneSignedPostSayingWhereTheTenantLives()
    {
        await using var app = await StartAsync();
        await using var receiver = new Receiver(_ => 204);
        var tenant = Assert.IsType<AllocationOutcome.Allocated>(await AllocateAsync(app, receiver.Url));
        var live = (await app.Allocation.FindAsync(tenant.Tenant.InstanceId, None))!;
        Assert.Equal(receiver.Url, live.Tenant.CallbackUrl);
        Assert.Equal(receiver.Url, AllocationView.Of(live.Pool, live.Tenant).CallbackUrl);
        var backupId = Guid.NewGuid();

        var result = await app.Get<TenantCallbacks>().NotifyAsync(tenant.Tenant.InstanceId, "restored", new { backup_id = backupId, rows = 3 }, None);

        Assert.Equal(CallbackResult.Delivered, result);
        var received = Assert.Single(receiver.Received);
        Assert.Equal("POST", received.Method);
        Assert.Equal("/hooks/tenant", received.Path);
        Assert.StartsWith("application/json", received.ContentType, StringComparison.Ordinal);
        Assert.Equal(TenantCallbacks.Sign(Key, received.Body), received.Signature);
        Assert.NotEqual(TenantCallbacks.Sign(Key, [.. received.Body, (byte)' ']), received.Signature);
        using var json = JsonDocument.Parse(received.Body);
        var body = json.RootElement;
        Assert.Equal("restored", body.GetProperty("event").GetString());
        Assert.Equal(tenant.Tenant.InstanceId, body.GetProperty("instance_id").GetGuid());
        Assert.Equal(live.Pool.Host, body.GetProperty("db_host").GetString());
        Assert.Equal(live.Pool.Port, body.GetProperty("db_port").GetInt32());
        Assert.Equal(live.Tenant.DbName, body.GetProperty("db_name").GetString());
        Assert.True((DateTimeOffset.UtcNow - body.GetProperty("occurred_at").GetDateTimeOffset()).Duration() < TimeSpan.FromMinutes(1));
        Assert.Equal(backupId, body.GetProperty("backup_id").GetGuid());
        Assert.Equal(3, body.GetProperty("rows").GetInt32());
        Assert.False(body.TryGetProperty("db_password", out _));
    }

    [Fact]
    [Trait("Issue", "14")]
    public async Task Notify_ReceiverFailsTwiceThenAnswers_RetriedWithTheSameSignedBody()
    {
        await using var app = await StartAsync();
        await using var receiver = new Receiver(n => n <= 2 ? 500 + n : 200);
        var tenant = Assert.IsType<AllocationOutcome.Allocated>(await AllocateAsync(app, receiver.Url));

        Assert.Equal(CallbackResult.Delivered, await app.Get<TenantCallbacks>().NotifyAsync(tenant.Tenant.InstanceId, "moved", new { }, None));

        var all = receiver.Received.ToArray();
        Assert.Equal(3, all.Length);
        Assert.All(all, r => Assert.Equal(all[0].Body, r.Body));
        Assert.All(all, r => Assert.Equal(TenantCallbacks.Sign(Key, r.Body), r.Signature));
        Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM pool_events WHERE event = @e", ("e", PoolEventNames.CallbackFailed)));
    }

    [Fact]
    [Trait("Issue", "14")]
    public async Task Notify_ReceiverAlwaysFailsOrIsGone_PoolEventRecordedNothingThrown()
    {
        await using var app = await StartAsync();
        var receiver = new Receiver(_ => 500);
        var tenant = Assert.IsType<AllocationOutcome.Allocated>(await AllocateAsync(app, receiver.Url));
        var callbacks = app.Get<TenantCallbacks>();

        Assert.Equal(CallbackResult.Failed, await callbacks.NotifyAsync(tenant.Tenant.InstanceId, "restored", new { }, None));
        Assert.Equal(3, receiver.Received.Count);
        await receiver.DisposeAsync();
        Assert.Equal(CallbackResult.Failed, await callbacks.NotifyAsync(tenant.Tenant.InstanceId, "restored", new { }, None));

        var reasons = await app.CatalogScalarAsync<string>("SELECT string_agg(reason, ' | ' ORDER BY id) FROM pool_events WHERE instance_id = @i AND event = @e",
            ("i", tenant.Tenant.InstanceId), ("e", PoolEventNames.CallbackFailed));
        Assert.StartsWith("restored to 127.0.0.1: HTTP 500 after 3 attempts | restored to 127.0.0.1: ", reasons, StringComparison.Ordinal);
    }

    [Fact]
    [Trait("Issue", "14")]
    public async Task Notify_NoKeyOrNoCallbackUrl_NothingSent()
    {
        await using var receiver = new Receiver(_ => 200);
        await using (var app = await StartAsync(withKey: false))
        {
            var tenant = Assert.IsType<AllocationOutcome.Allocated>(await AllocateAsync(app, receiver.Url));
            Assert.Equal(CallbackResult.NoKey, await app.Get<TenantCallbacks>().NotifyAsync(tenant.Tenant.InstanceId, "restored", new { }, None));
            Assert.Equal(CallbackResult.NoKey, await app.Get<TenantCallbacks>().NotifyAsync(tenant.Tenant.InstanceId, "restored", new { }, None));
        }

        await using (var app = await StartAsync())
        {
            var tenant = Assert.IsType<AllocationOutcome.Allocated>(await AllocateAsync(app, callbackUrl: null));
            Assert.Equal(CallbackResult.NoCallback, await app.Get<TenantCallbacks>().NotifyAsync(tenant.Tenant.InstanceId, "restored", new { }, None));
        }

        Assert.Empty(receiver.Received);
    }

    [Theory]
    [Trait("Issue", "14")]
    [InlineData("http://example.com/hook", true)]
    [InlineData("https://user:hunter2pw@example.com/hook", true)]
    [InlineData("ftp://example.com/hook", true)]
    [InlineData("/relative/hook", true)]
    [InlineData("https://example.com/hook#frag", true)]
    [InlineData("http://127.0.0.1:9/hook", false)]
    public async Task Allocate_CallbackUrlNotHttpsOrWithUserInfo_400NamingTheField(string url, bool allowLoopback)
    {
        await using var app = await StartAsync(allowLoopback: allowLoopback);

        var invalid = Assert.IsType<AllocationOutcome.Invalid>(await AllocateAsync(app, url));

        Assert.True(invalid.Errors.ContainsKey("callback_url"));
        Assert.DoesNotContain(invalid.Errors["callback_url"], e => e.Contains("hunter2pw", StringComparison.Ordinal));
        Assert.Equal(0L, await app.CatalogScalarAsync<long>("SELECT count(*) FROM tenant_databases"));
    }

    [Fact]
    [Trait("Issue", "14")]
    public async Task Allocate_HttpsCallbackUrl_StoredAndShown()
    {
        await using var app = await StartAsync(allowLoopback: false);

        var tenant = Assert.IsType<AllocationOutcome.Allocated>(await AllocateAsync(app, "https://instances.example.com/hooks/db?x=1"));

        Assert.Equal("https://instances.example.com/hooks/db?x=1", await app.CatalogScalarAsync<string>(
            "SELECT callback_url FROM tenant_databases WHERE instance_id = @i", ("i", tenant.Tenant.InstanceId)));
    }
}
