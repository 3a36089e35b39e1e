using System.Text.Json;
using System.Text.Json.Nodes;
using Json.Schema;
using Microsoft.OpenApi;
using Microsoft.OpenApi.Reader;

namespace TenantDb.Tests;

/// <summary>
/// openapi.yaml read with the OpenAPI.NET reader (YAML), and a real JSON Schema (2020-12) validator fed with the schema of
/// one response: the reader's schema object written back as JSON, its <c>$ref</c>s to <c>components/schemas</c> resolved by
/// the validator from <c>$defs</c> holding every component schema, also as the reader gives them.
/// </summary>
public sealed class OpenApiContract
{
    private static readonly EvaluationOptions Strict = new() { OutputFormat = OutputFormat.List, RequireFormatValidation = true };
    private readonly Dictionary<string, JsonSchema> _schemas = [];

    private OpenApiContract(OpenApiDocument document) => Document = document;

    public OpenApiDocument Document { get; }

    /// <summary>Parses the YAML text; a document the reader reports an error in fails the test.</summary>
    public static OpenApiContract Parse(string yaml)
    {
        var settings = new OpenApiReaderSettings();
        settings.AddYamlReader();
        var result = OpenApiDocument.Parse(yaml, OpenApiConstants.Yaml, settings);
        var errors = result.Diagnostic?.Errors.Select(e => $"{e.Pointer}: {e.Message}").ToList() ?? [];
        Assert.True(errors.Count == 0, "openapi.yaml does not parse cleanly:\n" + string.Join('\n', errors));
        Assert.NotNull(result.Document);
        return new OpenApiContract(result.Document!);
    }

    /// <summary>Every documented operation: its path (as written, with the server's <c>/api</c> left out) and method (upper case).</summary>
    public IReadOnlyList<(string Path, string Method, OpenApiOperation Operation)> Operations =>
        Document.Paths.SelectMany(p => (p.Value.Operations ?? []).Select(o => (p.Key, o.Key.Method.ToUpperInvariant(), o.Value))).ToList();

    public OpenApiOperation Operation(string path, string method) =>
        Operations.SingleOrDefault(o => o.Path == path && o.Method == method.ToUpperInvariant()).Operation
        ?? throw new Xunit.Sdk.XunitException($"openapi.yaml documents no {method} {path}.");

    /// <summary>
    /// Checks one real answer against the document: its status is documented for the operation, its media type is one the
    /// document names for that status, and its body validates against that schema. Returns the problems found (none: valid).
    /// </summary>
    public IReadOnlyList<string> Check(string path, string method, int status, string? mediaType, string body)
    {
        var operation = Operation(path, method);
        if (operation.Responses is null || !operation.Responses.TryGetValue(status.ToString(System.Globalization.CultureInfo.InvariantCulture), out var response))
        {
            return [$"{method} {path}: status {status} is not documented (documented: {string.Join(", ", operation.Responses?.Keys.ToList() ?? [])})"];
        }

        if (response.Content is not { Count: > 0 } content)
        {
            return body.Length == 0 ? [] : [$"{method} {path} {status}: a body the document does not describe"];
        }

        if (mediaType is null || !content.TryGetValue(mediaType, out var media) || media.Schema is null)
        {
            return [$"{method} {path} {status}: media type '{mediaType}' is not documented (documented: {string.Join(", ", content.Keys)})"];
        }

        if (mediaType.EndsWith("yaml", StringComparison.Ordinal) || mediaType == "text/html")
        {
            return [];
        }

        var key = $"{method} {path} {status} {mediaType}";
        if (!_schemas.TryGetValue(key, out var schema))
        {
            schema = _schemas[key] = Build(media.Schema);
        }

        using var instance = JsonDocument.Parse(body);
        var result = schema.Evaluate(instance.RootElement, Strict);
        return result.IsValid ? [] : Errors(result).Select(e => $"{key}: {e}").ToList();
    }

    /// <summary>The JSON Schema of a documented schema object (a component by name, e.g. <c>Allocation</c>), for tests of the validator itself.</summary>
    public JsonSchema Schema(string component) =>
        Build(Document.Components?.Schemas?[component] ?? throw new Xunit.Sdk.XunitException($"no component schema {component}"));

    public static IReadOnlyList<string> Validate(JsonSchema schema, string json)
    {
        using var instance = JsonDocument.Parse(json);
        var result = schema.Evaluate(instance.RootElement, Strict);
        return result.IsValid ? [] : Errors(result).ToList();
    }

    private JsonSchema Build(IOpenApiSchema schema)
    {
        var root = Write(schema).AsObject();
        var definitions = new JsonObject();
        foreach (var (name, component) in Document.Components?.Schemas ?? new Dictionary<string, IOpenApiSchema>())
        {
            definitions[name] = Write(component);
        }

        // A $ref beside other keywords (a root that is itself a reference) is wrapped, so nothing is lost.
        var wrapped = new JsonObject
        {
            ["$schema"] = "https://json-schema.org/draft/2020-12/schema",
            ["$defs"] = definitions,
            ["allOf"] = new JsonArray(root),
        };
        Rewrite(wrapped);
        return JsonSchema.Build(JsonSerializer.SerializeToElement(wrapped), new BuildOptions { SchemaRegistry = new SchemaRegistry() },
            new Uri($"https://tenantdb.invalid/openapi/{Guid.NewGuid():N}"));
    }

    private static JsonNode Write(IOpenApiSchema schema)
    {
        using var text = new StringWriter();
        schema.SerializeAsV31(new OpenApiJsonWriter(text));
        return JsonNode.Parse(text.ToString())!;
    }

    /// <summary>#/components/schemas/X → #/$defs/X, everywhere.</summary>
    private static void Rewrite(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                if (obj["$ref"] is JsonValue reference && reference.GetValue<string>() is { } target
                    && target.StartsWith("#/components/schemas/", StringComparison.Ordinal))
                {
                    obj["$ref"] = "#/$defs/" + target["#/components/schemas/".Length..];
                }

                foreach (var (_, child) in obj.ToList())
                {
                    Rewrite(child);
                }

                break;
            case JsonArray array:
                foreach (var child in array)
                {
                    Rewrite(child);
                }

                break;
        }
    }

    private static IEnumerable<string> Errors(EvaluationResults result) =>
        (result.Details ?? []).Prepend(result).Where(d => d.Errors is { Count: > 0 })
            .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation} ({d.EvaluationPath}): {e.Key}: {e.Value}")).Distinct();
}
