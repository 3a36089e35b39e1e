using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Api;
using TenantDb.Functions.Orchestrations;
using TenantDb.Functions.Tests.Infrastructure;
using TenantDb.Functions.Allocations;

namespace TenantDb.Functions.Tests.Api;

/// <summary>
/// Issue 9 items 4 and 5: no caller key (function or master) in any URL, body or header the app hands out, and every URL
/// on the configured public base, never on the request's Host header.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class KeysAndBaseUrlTests(PostgresFixture fixture)
{
    private const string CallerKey = "caller-function-key-4f9c2e81";
    private const string MasterKey = "caller-master-key-8d1b7a35";
    private const string PublicBaseUrl = "https://allocator.example.test";
    private static readonly Dictionary<string, string?> Settings = new() { ["Api:PublicBaseUrl"] = PublicBaseUrl };

    private static string Body(Guid instance, string tier = "standard") =>
        Http.Json(new { instance_id = instance.ToString(), customer_id = Guid.NewGuid().ToString(), plan_tier = tier });

    /// <summary>Everything the caller receives: the body as written and every response header.</summary>
    private static string Wire(HttpRequest request, JsonElement body) =>
        body.GetRawText() + "\n" + string.Join("\n", request.HttpContext.Response.Headers.Select(h => $"{h.Key}: {h.Value}"));

    private static HttpRequest WithKeyInQuery(HttpRequest request, string key)
    {
        request.Headers.Remove("x-functions-key");
        request.QueryString = new QueryString("?code=" + Uri.EscapeDataString(key));
        return request;
    }

    [Theory]
    [Trait("Issue9", "4")]
    [InlineData("x-functions-key", "standard")]
    [InlineData("code", "standard")]
    [InlineData("x-functions-key", "premium")]
    public async Task Allocate_NoCapacityCalledWithAKey_StatusUrlsCarryTheSystemKeyNotTheCallers(string keyIn, string tier)
    {
        await using var app = await TestApp.StartAsync(fixture, Settings);
        await using var engine = await InMemoryEngine.StartAsync(_ => { });
        var functions = ActivatorUtilities.CreateInstance<AllocationFunctions>(app.Services);
        var request = Http.Request("POST", "/api/database/allocate", Body(Guid.NewGuid(), tier), functionKey: CallerKey);
        if (keyIn == "code")
        {
            WithKeyInQuery(request, CallerKey);
        }

        var result = tier == "premium"
            ? await functions.ProvisionDedicatedDatabase(request, FunctionsBinding.Client(engine.Client), default)
            : await functions.AllocateDatabase(request, FunctionsBinding.Client(engine.Client), default);
        var (status, _, body) = Http.Read(result);

        Assert.Equal(202, status);
        var wire = Wire(request, body);
        Assert.DoesNotContain(CallerKey, wire);
        var statusUri = body.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!;
        Assert.StartsWith(FunctionsBinding.WebhookBaseUrl + "/instances/allocate-", statusUri);
        Assert.Contains("code=" + FunctionsBinding.SystemKey, statusUri);
        Assert.Equal(statusUri, request.HttpContext.Response.Headers.Location.ToString());
    }

    [Fact]
    [Trait("Issue9", "4")]
    public async Task ProvisionPoolNow_CalledWithTheMasterKey_MasterKeyInNeitherBodyNorLocation()
    {
        await using var app = await TestApp.StartAsync(fixture, Settings);
        await using var engine = await InMemoryEngine.StartAsync(_ => { });
        var functions = ActivatorUtilities.CreateInstance<ProvisioningFunctions>(app.Services);
        var request = Http.Request("POST", "/api/database/admin/provision-pool", functionKey: MasterKey);

        var (status, _, body) = Http.Read(await functions.ProvisionPoolNow(request, FunctionsBinding.Client(engine.Client), default));

        Assert.Equal(202, status);
        Assert.DoesNotContain(MasterKey, Wire(request, body));
        Assert.Contains("code=" + FunctionsBinding.SystemKey, request.HttpContext.Response.Headers.Location.ToString());
    }

    [Fact]
    [Trait("Issue9", "5")]
    public async Task Allocate_HostHeaderEvilExample_NoUrlOnThatHost_ClaimUrlBaseFromConfiguration()
    {
        await using var app = await TestApp.StartAsync(fixture, Settings);
        await using var engine = await InMemoryEngine.StartAsync(_ => { });
        var functions = ActivatorUtilities.CreateInstance<AllocationFunctions>(app.Services);
        var instance = Guid.NewGuid();
        var request = Http.Request("POST", "/api/database/allocate", Body(instance), functionKey: CallerKey);
        request.Host = new HostString("evil.example");
        request.Scheme = "https";

        var (status, _, body) = Http.Read(await functions.AllocateDatabase(request, FunctionsBinding.Client(engine.Client), default));

        Assert.Equal(202, status);
        Assert.DoesNotContain("evil.example", Wire(request, body));
        // The waiting run builds the claim URL of its result from the base URL it was given.
        var run = await engine.Client.GetInstanceAsync(AllocateWhenReady.InstanceIdFor(instance), getInputsAndOutputs: true);
        Assert.NotNull(run);
        Assert.DoesNotContain("evil.example", run.SerializedInput);
        Assert.Equal(PublicBaseUrl, run.ReadInputAs<AllocateWhenReadyInput>()!.BaseUrl);
    }
}

/// <summary>Issue 9 item 5 at start-up: the configured public base URL is validated, and defaults from the host name.</summary>
[Trait("Category", Tier.Unit)]
public sealed class PublicBaseUrlTests
{
    [Theory]
    [Trait("Issue9", "5")]
    [InlineData("ftp://allocator.example.test")]
    [InlineData("allocator.example.test")]
    [InlineData("/relative")]
    [InlineData("https://allocator.example.test/?x=1")]
    [InlineData("https://allocator.example.test/#top")]
    [InlineData("https://user:secret@allocator.example.test")]
    public void PublicBaseUrl_NotAnAbsoluteHttpUrl_StartUpFails(string value)
    {
        using var services = Services(new() { ["Api:PublicBaseUrl"] = value });

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IStartupValidator>().Validate());
        Assert.Contains("Api:PublicBaseUrl", error.Message);
    }

    [Theory]
    [Trait("Issue9", "5")]
    [InlineData(null, null, "http://127.0.0.1:7071")]
    [InlineData(null, "myapp.azurewebsites.net", "https://myapp.azurewebsites.net")]
    [InlineData(null, "localhost:7071", "http://localhost:7071")]
    [InlineData(null, "127.0.0.1:7123", "http://127.0.0.1:7123")]
    [InlineData("https://db.example.test/allocator/", "myapp.azurewebsites.net", "https://db.example.test/allocator")]
    public void PublicBaseUrl_Default_FromTheConfiguredHostName(string? configured, string? websiteHostName, string expected)
    {
        using var services = Services(new() { ["Api:PublicBaseUrl"] = configured, ["WEBSITE_HOSTNAME"] = websiteHostName });

        services.GetRequiredService<IStartupValidator>().Validate();
        Assert.Equal(expected, services.GetRequiredService<IOptions<ApiOptions>>().Value.BaseUrl);
    }

    private static ServiceProvider Services(Dictionary<string, string?> settings)
    {
        settings["ConnectionStrings:Catalog"] = "Host=127.0.0.1;Database=unused";
        settings["Secrets:Key"] = Secrets.SecretProtector.GenerateKey();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        return new ServiceCollection().AddSingleton<IConfiguration>(configuration).AddLogging().AddTenantDbServices(configuration).BuildServiceProvider();
    }
}
