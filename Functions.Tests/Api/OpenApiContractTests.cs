using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.OpenApi;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Api;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Tests.Api;

/// <summary>
/// Issue 12, the contract: openapi.yaml (read by the OpenAPI.NET reader) documents exactly the HTTP functions of the build's
/// functions.metadata, with their routes, methods and keys; the served copy is the repository's file; and the validator the
/// end-to-end contract test uses refuses what the schemas forbid.
/// </summary>
[Trait("Category", Tier.Unit)]
public sealed class OpenApiContractTests
{
    private static readonly OpenApiContract Contract = OpenApiContract.Parse(OpenApiFunctions.Text);

    /// <summary>Every HTTP function of functions.metadata: documented path ("/" + route, the server URL holds /api), method, auth level.</summary>
    private static List<(string Function, string Path, string Method, string AuthLevel)> HttpFunctions()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "functions.metadata");
        Assert.True(File.Exists(path), $"functions.metadata not found at {path}");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.EnumerateArray()
            .SelectMany(f => f.GetProperty("bindings").EnumerateArray()
                .Where(b => b.GetProperty("type").GetString() == "httpTrigger")
                .SelectMany(b => b.GetProperty("methods").EnumerateArray().Select(m => (
                    f.GetProperty("name").GetString()!,
                    "/" + (b.TryGetProperty("route", out var r) ? r.GetString()! : f.GetProperty("name").GetString()!).TrimStart('/'),
                    m.GetString()!.ToUpperInvariant(),
                    b.GetProperty("authLevel").GetString()!))))
            .ToList();
    }

    [Fact]
    public void Document_IsOpenApi31_WithServersUnderApi()
    {
        Assert.StartsWith("openapi: 3.1", OpenApiFunctions.Text, StringComparison.Ordinal);
        Assert.All(Contract.Document.Servers!, s => Assert.EndsWith("/api", s.Url, StringComparison.Ordinal));
    }

    [Fact]
    public void EveryHttpFunction_IsDocumented_AndEveryDocumentedOperation_IsAFunction()
    {
        var functions = HttpFunctions().Select(f => $"{f.Method} {f.Path}").ToHashSet();
        var documented = Contract.Operations.Select(o => $"{o.Method} {o.Path}").ToHashSet();

        Assert.True(functions.Count >= 17, $"only {functions.Count} HTTP functions in functions.metadata");
        Assert.True(functions.Except(documented).ToList() is { Count: 0 } missing,
            "HTTP functions openapi.yaml does not document: " + string.Join(", ", functions.Except(documented)));
        Assert.True(documented.Except(functions).ToList() is { Count: 0 } extra,
            "openapi.yaml documents operations no function serves: " + string.Join(", ", documented.Except(functions)));
        Console.WriteLine($"openapi.yaml documents {documented.Count} operations on {Contract.Document.Paths.Count} paths, as functions.metadata serves them");
    }

    [Fact]
    public void EveryOperation_NamesTheKeyItsFunctionNeeds()
    {
        var expected = new Dictionary<string, string[]>
        {
            ["Anonymous"] = [],
            ["Function"] = ["functionKey", "functionKeyQuery"],
            ["Admin"] = ["adminKey", "adminKeyQuery"],
        };
        foreach (var (function, path, method, level) in HttpFunctions())
        {
            var operation = Contract.Operation(path, method);
            Assert.Equal(function, operation.OperationId);
            Assert.NotNull(operation.Security); // explicit, also [] for anonymous: no document-wide default applies
            var schemes = operation.Security!.SelectMany(r => r.Keys.Select(k => k.Reference.Id!)).Order(StringComparer.Ordinal).ToArray();
            Assert.True(expected[level].SequenceEqual(schemes), $"{method} {path} ({level}) names [{string.Join(", ", schemes)}]");
            if (level != "Anonymous")
            {
                Assert.True(operation.Responses!.ContainsKey("401"), $"{method} {path} documents no 401");
            }
        }

        var scheme = Contract.Document.Components!.SecuritySchemes!;
        Assert.Equal(("x-functions-key", ParameterLocation.Header), (scheme["functionKey"].Name, scheme["functionKey"].In!.Value));
        Assert.Equal(("code", ParameterLocation.Query), (scheme["adminKeyQuery"].Name, scheme["adminKeyQuery"].In!.Value));
    }

    [Fact]
    public void EveryRouteParameter_IsADocumentedPathParameter()
    {
        foreach (var (_, path, method, _) in HttpFunctions())
        {
            var item = Contract.Document.Paths[path];
            var declared = (item.Parameters ?? []).Concat(Contract.Operation(path, method).Parameters ?? [])
                .Where(p => p.In == ParameterLocation.Path).Select(p => p.Name).ToHashSet();
            var inRoute = System.Text.RegularExpressions.Regex.Matches(path, "{([^}]+)}").Select(m => m.Groups[1].Value).ToHashSet();
            Assert.True(inRoute.SetEquals(declared!), $"{method} {path}: route parameters [{string.Join(", ", inRoute)}], documented [{string.Join(", ", declared)}]");
        }
    }

    [Fact]
    public void ServedDocument_IsTheRepositoryFile()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Functions.sln")))
        {
            dir = dir.Parent;
        }

        Assert.NotNull(dir);
        Assert.Equal(File.ReadAllText(Path.Combine(dir!.FullName, "openapi.yaml")), OpenApiFunctions.Text);
    }

    [Fact]
    public void HttpFile_ExercisesEveryDocumentedOperation_WithPlaceholderKeys()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Functions.sln")))
        {
            dir = dir.Parent;
        }

        var lines = File.ReadAllLines(Path.Combine(dir!.FullName, "requests", "allocator.http"));
        var requests = lines.Select(l => System.Text.RegularExpressions.Regex.Match(l, @"^(GET|POST|PUT|PATCH|DELETE) \{\{baseUrl\}\}(/[^?\s]*)"))
            .Where(m => m.Success).Select(m => (Method: m.Groups[1].Value, Path: m.Groups[2].Value)).ToList();
        var covered = Contract.Operations.Where(o => requests.Any(r => r.Method == o.Method && System.Text.RegularExpressions.Regex.IsMatch(
            r.Path, "^" + System.Text.RegularExpressions.Regex.Replace(System.Text.RegularExpressions.Regex.Escape(o.Path), @"\\\{[^}]+}", "[^/]+") + "$")))
            .Select(o => $"{o.Method} {o.Path}").ToHashSet();
        var all = Contract.Operations.Select(o => $"{o.Method} {o.Path}").ToList();

        Assert.True(all.All(covered.Contains), "requests/allocator.http does not exercise: " + string.Join(", ", all.Where(o => !covered.Contains(o))));
        Assert.Equal(all.Count, requests.Count);
        Assert.All(lines.Where(l => l.StartsWith("@", StringComparison.Ordinal) && l.Contains("Key", StringComparison.Ordinal)),
            l => Assert.Matches(@"= <[^>]+>$", l));
    }

    private static void Valid(IReadOnlyList<string> errors) => Assert.True(errors.Count == 0, string.Join('\n', errors));

    private static JsonObject AllocationBody() => JsonSerializer.SerializeToNode(new AllocationView("allocated", Guid.NewGuid(), Guid.NewGuid(),
        "standard", 7, "127.0.0.1", 5432, "odoo_abc", "odoo_abc_a", "pool-1", ServerType.Shared, TenantDatabaseStatus.Ready,
        DateTimeOffset.UtcNow, DateTimeOffset.UtcNow, 1, new CredentialsView("http://127.0.0.1:7071/api/database/credentials/x/claim", DateTimeOffset.UtcNow)),
        ApiJson.Options)!.AsObject();

    [Fact]
    public void Validator_AcceptsTheCodesAllocation_AndRefusesAMissingRequiredAnUndocumentedOrAMistypedField()
    {
        var body = AllocationBody();
        Valid(Contract.Check("/database/allocate", "POST", 200, "application/json", body.ToJsonString()));

        var extra = body.DeepClone().AsObject();
        extra["db_secret_sauce"] = "x";
        Assert.Contains(Contract.Check("/database/allocate", "POST", 200, "application/json", extra.ToJsonString()),
            e => e.Contains("db_secret_sauce", StringComparison.Ordinal) || e.Contains("additionalProperties", StringComparison.Ordinal));

        var missing = body.DeepClone().AsObject();
        missing.Remove("db_server_id");
        Assert.Contains(Contract.Check("/database/allocate", "POST", 200, "application/json", missing.ToJsonString()),
            e => e.Contains("db_server_id", StringComparison.Ordinal));

        var mistyped = body.DeepClone().AsObject();
        mistyped["db_port"] = "5432";
        Assert.NotEmpty(Contract.Check("/database/allocate", "POST", 200, "application/json", mistyped.ToJsonString()));

        var badUuid = body.DeepClone().AsObject();
        badUuid["instance_id"] = "not-a-uuid";
        Assert.NotEmpty(Contract.Check("/database/allocate", "POST", 200, "application/json", badUuid.ToJsonString()));
    }

    [Fact]
    public void Validator_AcceptsTheCodesProblems_AndRefusesAnUndocumentedStatusOrMediaType()
    {
        var validation = Problems.Validation(new Dictionary<string, string[]> { ["plan_tier"] = ["plan_tier must be one of: standard."] });
        var unavailable = Problems.Unavailable("no-capacity", "No pool has room for this tenant.", 10);
        var internalError = Problems.Internal("invocation-1");
        string Json(Microsoft.AspNetCore.Mvc.JsonResult r) => JsonSerializer.Serialize(r.Value, ApiJson.Options);

        Valid(Contract.Check("/database/admin/pools", "GET", 400, "application/problem+json", Json(validation)));
        Valid(Contract.Check("/database/allocate", "POST", 503, "application/problem+json", Json(unavailable)));
        Valid(Contract.Check("/database/allocate", "POST", 500, "application/problem+json", Json(internalError)));
        // A 503 without retry_after, a problem with an undocumented member, a status or media type the route does not answer.
        Assert.NotEmpty(Contract.Check("/database/allocate", "POST", 503, "application/problem+json", Json(Problems.NotFound("x", "y"))));
        var extra = JsonNode.Parse(Json(unavailable))!.AsObject();
        extra["stack"] = "at ...";
        Assert.NotEmpty(Contract.Check("/database/allocate", "POST", 503, "application/problem+json", extra.ToJsonString()));
        Assert.NotEmpty(Contract.Check("/database/allocate", "POST", 418, "application/problem+json", Json(unavailable)));
        Assert.NotEmpty(Contract.Check("/database/allocate", "POST", 503, "application/json", Json(unavailable)));
    }
}
