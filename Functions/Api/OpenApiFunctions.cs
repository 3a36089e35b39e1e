using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;

namespace TenantDb.Functions.Api;

/// <summary>The contract (anonymous): the repository's <c>openapi.yaml</c>, embedded in this assembly, served as it is.</summary>
public sealed class OpenApiFunctions
{
    /// <summary>The embedded resource's name (<c>Functions.csproj</c> embeds the repository root's file under it).</summary>
    public const string ResourceName = "openapi.yaml";

    public const string ContentType = "application/yaml; charset=utf-8";

    private static readonly Lazy<string> Document = new(() =>
    {
        using var stream = typeof(OpenApiFunctions).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"The assembly has no embedded {ResourceName}.");
        using var reader = new StreamReader(stream, System.Text.Encoding.UTF8);
        return reader.ReadToEnd();
    });

    /// <summary>The document's text.</summary>
    public static string Text => Document.Value;

    [Function(nameof(OpenApiDocument))]
    public IActionResult OpenApiDocument(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "openapi.yaml")] HttpRequest req) =>
        new ContentResult { Content = Text, ContentType = ContentType, StatusCode = StatusCodes.Status200OK };
}
