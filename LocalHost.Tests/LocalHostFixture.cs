using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using TenantDb.LocalHost.Durable;

namespace TenantDb.LocalHost.Tests;

/// <summary>LocalHost serving the sample app in-process on a free loopback port, on a task hub of its own in Azurite.</summary>
public sealed class LocalHostFixture : IAsyncLifetime
{
    public const string MasterKey = "master-test-key";
    public const string FunctionKey = "function-test-key";
    public const string SystemKey = "system-test-key";

    private WebApplication? _app;

    public HttpClient Client { get; private set; } = new();

    public string HubName { get; } = "LhTest" + Guid.NewGuid().ToString("N")[..10];

    public async Task InitializeAsync()
    {
        await TestEnvironment.EnsureAzuriteAsync();
        _app = LocalFunctionsHost.Build(
        [
            "--app", TestEnvironment.SampleAppDirectory,
            "--port", "0",
            "--LocalHost:MasterKey=" + MasterKey,
            "--LocalHost:FunctionKeys=other-key," + FunctionKey,
            "--LocalHost:SystemKey=" + SystemKey,
            "--LocalHost:HubName=" + HubName,
            "--AzureWebJobsStorage=UseDevelopmentStorage=true",
            "--TickSchedule=*/1 * * * * *",
            "--Sample:Greeting=Hello",
        ]);
        using CancellationTokenSource timeout = new(TimeSpan.FromMinutes(1));
        await _app.StartAsync(timeout.Token);
        Client.Dispose();
        Client = new HttpClient { BaseAddress = new Uri(_app.Urls.Single()), Timeout = TimeSpan.FromSeconds(30) };
    }

    public async Task DisposeAsync()
    {
        Client.Dispose();
        if (_app is null)
        {
            return;
        }

        var engine = _app.Services.GetRequiredService<DurableEngine>();
        using CancellationTokenSource timeout = new(TimeSpan.FromSeconds(30));
        await _app.StopAsync(timeout.Token);
        await engine.Service.DeleteAsync();
        await _app.DisposeAsync();
    }
}
