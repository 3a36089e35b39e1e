using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Callbacks;

/// <summary>What one notice came to.</summary>
public enum CallbackResult { Delivered, NoCallback, NoKey, Failed }

/// <summary>
/// Tells a tenant's platform where its database lives after a move or a restore (issue 14 item 6): a JSON POST to the allocation's
/// <c>callback_url</c>, <c>{event, instance_id, db_host, db_port, db_name, occurred_at, …payload}</c>, signed
/// <c>X-TenantDb-Signature: sha256=&lt;hex HMAC-SHA256 of the exact body bytes&gt;</c> with <see cref="CallbackOptions.Key"/>. A few tries
/// with a doubling backoff, a short timeout each, no redirects followed. Called from an activity, never on a request's path; a
/// failure is logged and recorded as a <c>callback_failed</c> pool event, never thrown (the move or restore stands).
/// </summary>
public sealed partial class TenantCallbacks : IDisposable
{
    public const string SignatureHeader = "X-TenantDb-Signature";

    private readonly TenantStore _tenants;
    private readonly PoolStore _pools;
    private readonly IOptions<CallbackOptions> _options;
    private readonly TimeProvider _time;
    private readonly ILogger<TenantCallbacks> _logger;
    private readonly HttpClient _http;
    private int _warnedNoKey;

    public TenantCallbacks(TenantStore tenants, PoolStore pools, IOptions<CallbackOptions> options, TimeProvider time, ILogger<TenantCallbacks> logger)
    {
        (_tenants, _pools, _options, _time, _logger) = (tenants, pools, options, time, logger);
        // One client for the app's life; redirects are not followed (a callback goes where the caller registered it, nowhere else).
        _http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
        {
            Timeout = System.Threading.Timeout.InfiniteTimeSpan,
        };
    }

    /// <summary>The signature header's value for <paramref name="body"/> under <paramref name="key"/>.</summary>
    public static string Sign(byte[] key, ReadOnlySpan<byte> body) => "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(key, body));

    /// <summary>
    /// POSTs <paramref name="evt"/> about the instance's live database to its callback URL, with <paramref name="payload"/>'s members
    /// added (an object serialized as snake_case JSON; it may not replace the standard members). Never throws for a failed delivery.
    /// </summary>
    public async Task<CallbackResult> NotifyAsync(Guid instanceId, string evt, object payload, CancellationToken ct)
    {
        var live = await _tenants.FindLiveAsync(instanceId, ct);
        if (live is not { Tenant.CallbackUrl: { } url })
        {
            return CallbackResult.NoCallback;
        }

        if (Key() is not { } key)
        {
            if (Interlocked.Exchange(ref _warnedNoKey, 1) == 0)
            {
                LogNoKey();
            }

            return CallbackResult.NoKey;
        }

        var body = Body(evt, live.Pool, live.Tenant, payload);
        var signature = Sign(key, body);
        var options = _options.Value;
        var host = new Uri(url).Host;
        string? failure = null;
        for (var attempt = 1; attempt <= options.Attempts; attempt++)
        {
            if (attempt > 1)
            {
                await Task.Delay(options.Backoff * Math.Pow(2, attempt - 2), _time, ct);
            }

            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(options.Timeout);
                using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
                request.Headers.TryAddWithoutValidation(SignatureHeader, signature);
                using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
                if (response.IsSuccessStatusCode)
                {
                    LogDelivered(instanceId, evt, host, attempt);
                    return CallbackResult.Delivered;
                }

                failure = $"HTTP {(int)response.StatusCode}";
            }
            catch (Exception e) when (e is HttpRequestException || e is OperationCanceledException && !ct.IsCancellationRequested)
            {
                failure = e is OperationCanceledException ? $"no answer within {options.Timeout.TotalSeconds:0.###} s" : e.Message;
            }
        }

        LogFailed(instanceId, evt, host, options.Attempts, failure!);
        try
        {
            await _pools.AppendEventAsync(live.Pool.Id, instanceId, PoolEventNames.CallbackFailed,
                $"{evt} to {host}: {failure} after {options.Attempts} attempts", AuditActor.Current, ct);
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or TimeoutException)
        {
            LogEventNotRecorded(e, instanceId);
        }

        return CallbackResult.Failed;
    }

    private byte[]? Key()
    {
        var configured = _options.Value.Key;
        if (string.IsNullOrWhiteSpace(configured))
        {
            return null;
        }

        try
        {
            return Convert.FromBase64String(configured);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private byte[] Body(string evt, Pool pool, TenantDatabase tenant, object payload)
    {
        var body = new JsonObject
        {
            ["event"] = evt,
            ["instance_id"] = tenant.InstanceId,
            ["db_host"] = pool.Host,
            ["db_port"] = pool.Port,
            ["db_name"] = tenant.DbName,
            ["occurred_at"] = _time.GetUtcNow(),
        };
        if (JsonSerializer.SerializeToNode(payload, PayloadJson) is JsonObject extra)
        {
            foreach (var (name, value) in extra.ToList())
            {
                if (!body.ContainsKey(name))
                {
                    extra.Remove(name);
                    body[name] = value;
                }
            }
        }

        return JsonSerializer.SerializeToUtf8Bytes(body);
    }

    private static readonly JsonSerializerOptions PayloadJson = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    public void Dispose() => _http.Dispose();

    [LoggerMessage(LogLevel.Warning, "Callbacks:Key is not set (or not base64): tenant callbacks are not sent")]
    private partial void LogNoKey();

    [LoggerMessage(LogLevel.Information, "Callback {Event} for instance {InstanceId} delivered to {Host} (attempt {Attempt})")]
    private partial void LogDelivered(Guid instanceId, string @event, string host, int attempt);

    [LoggerMessage(LogLevel.Warning, "Callback {Event} for instance {InstanceId} to {Host} failed after {Attempts} attempts: {Failure}")]
    private partial void LogFailed(Guid instanceId, string @event, string host, int attempts, string failure);

    [LoggerMessage(LogLevel.Warning, "The failed callback of instance {InstanceId} could not be recorded as a pool event")]
    private partial void LogEventNotRecorded(Exception e, Guid instanceId);
}
