using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using TenantDb.Functions.Api;

namespace TenantDb.Functions.Tests.Infrastructure;

/// <summary>ASP.NET Core request contexts for calling HTTP functions directly, and reading their results as the wire sees them.</summary>
public static class Http
{
    public static HttpRequest Request(string method, string path, string? body = null, string? functionKey = "test-key")
    {
        var context = new DefaultHttpContext();
        context.Request.Method = method;
        context.Request.Scheme = "http";
        context.Request.Host = new HostString("127.0.0.1", 7071);
        context.Request.Path = path;
        if (functionKey is not null)
        {
            context.Request.Headers["x-functions-key"] = functionKey;
        }

        if (body is not null)
        {
            var bytes = Encoding.UTF8.GetBytes(body);
            context.Request.Body = new MemoryStream(bytes);
            context.Request.ContentLength = bytes.Length;
            context.Request.ContentType = "application/json";
        }

        return context.Request;
    }

    public static string Json(object value) => JsonSerializer.Serialize(value);

    /// <summary>Status code, content type and the JSON body exactly as it would be written.</summary>
    public static (int Status, string? ContentType, JsonElement Body) Read(IActionResult result)
    {
        var json = Assert.IsAssignableFrom<JsonResult>(result); // a 503 is a JsonResult that also sends Retry-After
        var text = JsonSerializer.Serialize(json.Value, (JsonSerializerOptions?)json.SerializerSettings ?? ApiJson.Options);
        using var doc = JsonDocument.Parse(text);
        return (json.StatusCode ?? 200, json.ContentType, doc.RootElement.Clone());
    }
}
