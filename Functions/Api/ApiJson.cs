using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;

namespace TenantDb.Functions.Api;

/// <summary>
/// The platform's JSON contract: snake_case, enums as lower-case words, nulls left out. Strict on input: a number is a
/// JSON number (never a string that looks like one) and a key appears once.
/// </summary>
public static class ApiJson
{
    public const int MaxBodyBytes = 64 * 1024;

    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        // The Web defaults read "5" as 5; a caller that sends a string where the contract says number is refused.
        NumberHandling = JsonNumberHandling.Strict,
        // {"name":"a","name":"b"}: which one wins differs between parsers, so neither does.
        AllowDuplicateProperties = false,
    };

    public static JsonResult Ok(object body) => new(body, Options) { StatusCode = StatusCodes.Status200OK };

    public static JsonResult Status(int statusCode, object body) => new(body, Options) { StatusCode = statusCode };

    /// <summary>
    /// Reads a JSON body of at most <see cref="MaxBodyBytes"/>; a missing, oversized or malformed body is a 400 problem,
    /// a body that is not declared <c>application/json</c> a 415 problem, never an exception.
    /// </summary>
    public static async Task<(T? Value, IActionResult? Problem)> ReadAsync<T>(HttpRequest request, CancellationToken ct) where T : class
    {
        if (request.ContentLength > MaxBodyBytes)
        {
            return (null, Problems.BadRequest("body-too-large", $"The request body is larger than {MaxBodyBytes} bytes."));
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + read > MaxBodyBytes)
            {
                return (null, Problems.BadRequest("body-too-large", $"The request body is larger than {MaxBodyBytes} bytes."));
            }

            buffer.Write(chunk, 0, read);
        }

        if (buffer.Length == 0)
        {
            return (null, Problems.BadRequest("body-required", "A JSON request body is required."));
        }

        if (!IsJson(request.ContentType))
        {
            return (null, Problems.UnsupportedMediaType());
        }

        try
        {
            var value = JsonSerializer.Deserialize<T>(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), Options);
            return value is null
                ? (null, Problems.BadRequest("body-required", "A JSON object is required."))
                : (value, null);
        }
        catch (JsonException e)
        {
            return (null, Problems.BadRequest("malformed-json", $"The body is not valid JSON for this request: {e.Path} (line {e.LineNumber}, byte {e.BytePositionInLine})."));
        }
    }

    /// <summary><c>application/json</c> or a <c>+json</c> type, parameters (charset) allowed; UTF-8 only.</summary>
    public static bool IsJson(string? contentType)
    {
        if (!MediaTypeHeaderValue.TryParse(contentType, out var media) || media.MediaType is not { } type)
        {
            return false;
        }

        var json = type.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            || (type.StartsWith("application/", StringComparison.OrdinalIgnoreCase) && type.EndsWith("+json", StringComparison.OrdinalIgnoreCase));
        return json && (media.CharSet is null || media.CharSet.Trim('"').Equals("utf-8", StringComparison.OrdinalIgnoreCase));
    }
}

/// <summary>RFC 9457 problem+json answers with a stable <c>type</c> per kind of error.</summary>
public static class Problems
{
    public const string ContentType = "application/problem+json";
    public const string TypePrefix = "urn:tenantdb:problem:";

    public static JsonResult Create(int status, string slug, string title, string? detail, IDictionary<string, object?>? extensions = null)
    {
        var body = new Dictionary<string, object?>
        {
            ["type"] = TypePrefix + slug,
            ["title"] = title,
            ["status"] = status,
            ["detail"] = detail,
        };
        foreach (var (key, value) in extensions ?? new Dictionary<string, object?>())
        {
            body[key] = value;
        }

        return new JsonResult(body, ApiJson.Options) { StatusCode = status, ContentType = ContentType };
    }

    public static JsonResult BadRequest(string slug, string detail) => Create(400, slug, "Bad request", detail);

    public static JsonResult UnsupportedMediaType() =>
        Create(StatusCodes.Status415UnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
            "The request body must be JSON, sent with Content-Type: application/json.");

    public static JsonResult InvalidInstanceId() =>
        BadRequest("invalid-instance-id", "instance_id must be a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).");

    public static JsonResult Validation(IReadOnlyDictionary<string, string[]> errors) =>
        Create(400, "validation", "The request is invalid", string.Join(" ", errors.Values.SelectMany(v => v)),
            new Dictionary<string, object?> { ["errors"] = errors });

    public static JsonResult NotFound(string slug, string detail) => Create(404, slug, "Not found", detail);

    public static JsonResult Conflict(string slug, string detail) => Create(409, slug, "Conflict", detail);

    public static JsonResult Gone(string slug, string detail) => Create(410, slug, "Gone", detail);

    /// <summary>What a 503 asks the caller to wait when no configured value is at hand (<c>Allocation:RetryAfterSeconds</c>'s default).</summary>
    public const int DefaultRetryAfterSeconds = 10;

    /// <summary>A fault, not the caller's mistake: 503 with <c>Retry-After</c> (header and <c>retry_after</c> in the body).</summary>
    public static JsonResult Unavailable(string slug, string detail, int retryAfterSeconds = DefaultRetryAfterSeconds,
        IDictionary<string, object?>? extensions = null)
    {
        var members = new Dictionary<string, object?>(extensions ?? new Dictionary<string, object?>()) { ["retry_after"] = retryAfterSeconds };
        var problem = Create(StatusCodes.Status503ServiceUnavailable, slug, "Service unavailable", detail, members);
        return new RetryAfterResult(problem.Value, retryAfterSeconds) { StatusCode = problem.StatusCode, ContentType = problem.ContentType };
    }

    /// <summary>A problem+json answer that also sends <c>Retry-After</c>.</summary>
    public sealed class RetryAfterResult(object? body, int retryAfterSeconds) : JsonResult(body, ApiJson.Options)
    {
        public int RetryAfterSeconds { get; } = retryAfterSeconds;

        public override Task ExecuteResultAsync(ActionContext context)
        {
            // A caller that set the configured value already keeps it.
            if (!context.HttpContext.Response.Headers.ContainsKey("Retry-After"))
            {
                context.HttpContext.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            return base.ExecuteResultAsync(context);
        }
    }

    public static JsonResult Internal(string? traceId) =>
        Create(500, "internal", "Internal error", "The request failed unexpectedly; nothing was left half-made. Retry later.",
            new Dictionary<string, object?> { ["trace_id"] = traceId });
}
