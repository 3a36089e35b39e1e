using System.Collections.Concurrent;
using System.Text.Json;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// A client that behaves like the platform's instance-service: it asks for an instance's database until it has one,
/// honouring <c>202</c> and <c>503</c> with their <c>Retry-After</c> (capped, to keep tests short), survives the allocator
/// going away mid-request, and gets a password by claiming, or by rotating when the first handoff is gone. Every answer
/// is recorded, so a test can check that no fault produced anything but 200, 202, or 503 with Retry-After.
/// </summary>
public sealed class InstanceServiceClient(AllocatorHost host)
{
    private static readonly TimeSpan MaxPause = TimeSpan.FromSeconds(2);

    /// <summary>Every answer's status (0 = no answer: the connection broke), in arrival order per request.</summary>
    public ConcurrentQueue<int> Statuses { get; } = new();

    /// <summary>503 answers without a <c>Retry-After</c> header.</summary>
    public int UnavailableWithoutRetryAfter => _unavailableWithoutRetryAfter;

    private int _unavailableWithoutRetryAfter;

    public static object Request(Guid instance, Guid customer) =>
        new { instance_id = instance.ToString(), customer_id = customer.ToString(), plan_tier = "standard" };

    /// <summary>One allocate request; the status, or 0 when the connection broke.</summary>
    public async Task<int> AllocateOnceAsync(Guid instance, Guid customer)
    {
        using var request = host.Request(HttpMethod.Post, "/api/database/allocate", body: Request(instance, customer));
        try
        {
            using var response = await host.Client.SendAsync(request);
            var status = (int)response.StatusCode;
            if (status == 503 && response.Headers.RetryAfter is null)
            {
                Interlocked.Increment(ref _unavailableWithoutRetryAfter);
            }

            Statuses.Enqueue(status);
            return status;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            Statuses.Enqueue(0);
            return 0;
        }
    }

    /// <summary>Asks until the instance's database is ready (200), within <paramref name="timeout"/>.</summary>
    public async Task AllocateUntilReadyAsync(Guid instance, Guid customer, TimeSpan timeout)
    {
        var deadline = DateTimeOffset.UtcNow + timeout;
        while (true)
        {
            var status = await AllocateOnceAsync(instance, customer);
            if (status == 200)
            {
                return;
            }

            Assert.True(status is 0 or 202 or 503, $"allocate for {instance} answered {status}");
            Assert.True(DateTimeOffset.UtcNow < deadline, $"instance {instance} got no database within {timeout} (last answer {status}): {host.Tail()}");
            await Task.Delay(MaxPause);
        }
    }

    /// <summary>
    /// The instance's credentials: its pending handoff claimed, or, when that is gone (claimed by a request whose answer was
    /// lost, expired), a rotation and its claim. Retries faults within <paramref name="timeout"/>.
    /// </summary>
    public async Task<JsonElement> CredentialsAsync(Guid instance, TimeSpan timeout)
    {
        var deadline = DateTimeOffset.UtcNow + timeout;
        var rotate = false;
        var history = new List<string>();
        while (true)
        {
            if (rotate)
            {
                var (rotated, answer) = await SendQuietlyAsync(HttpMethod.Post, $"/api/database/credentials/{instance:D}/rotate");
                history.Add($"rotate {rotated} {Problem(answer)}");
                Assert.True(rotated is 0 or 200 or 409 or 503, $"rotate for {instance} answered {rotated}");
            }

            var (status, body) = await SendQuietlyAsync(HttpMethod.Post, $"/api/database/credentials/{instance:D}/claim");
            if (status == 200)
            {
                return body;
            }

            history.Add($"claim {status} {Problem(body)}");
            Assert.True(status is 0 or 404 or 409 or 410 or 503, $"claim for {instance} answered {status}");
            Assert.True(DateTimeOffset.UtcNow < deadline,
                $"no credentials for {instance} within {timeout}: {string.Join(", ", history.Distinct())}\n{host.Tail()}");
            rotate = status is 404 or 410;
            await Task.Delay(status is 0 or 503 ? MaxPause : TimeSpan.Zero);
        }
    }

    // A problem answer's type, never a credentials body.
    private static string Problem(JsonElement body) =>
        body.ValueKind == JsonValueKind.Object && body.TryGetProperty("type", out var type) ? type.ToString() : "";

    private async Task<(int Status, JsonElement Body)> SendQuietlyAsync(HttpMethod method, string path)
    {
        try
        {
            var answer = await host.SendAsync(method, path);
            Statuses.Enqueue(answer.Status);
            return answer;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            Statuses.Enqueue(0);
            return (0, default);
        }
    }
}
