using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using TenantDb.LocalHost.Durable;
using Xunit;

namespace TenantDb.LocalHost.Tests;

/// <summary>LocalHost serving the sample app in-process on a free loopback port, on a task hub of its own in Azurite.</summary>
public sealed class LocalHostFixture : IAsyncLifetime
{
    public const string MasterKey = "master-test-key";
    public const string FunctionKey = "function-test-key";
    public const string SystemKey = "system-test-key";

    private WebApplication? app;

    public HttpClient Client { get; private set; } = null!;

    public string HubName { get; } = "LhTest" + Guid.NewGuid().ToString("N")[..10];

    public async Task InitializeAsync()
    {
        await TestEnvironment.EnsureAzuriteAsync();
        this.app = LocalFunctionsHost.Build(
        [
            "--app", TestEnvironment.SampleAppDirectory,
            "--port", "0",
            "--LocalHost:MasterKey=" + MasterKey,
            "--LocalHost:FunctionKeys=other-key," + FunctionKey,
            "--LocalHost:SystemKey=" + SystemKey,
            "--LocalHost:HubName=" + this.HubName,
            "--AzureWebJobsStorage=UseDevelopmentStorage=true",
            "--TickSchedule=*/1 * * * * *",
            "--Sample:Greeting=Hello",
        ]);
        using CancellationTokenSource timeout = new(TimeSpan.FromMinutes(1));
        await this.app.StartAsync(timeout.Token);
        this.Client = new HttpClient { BaseAddress = new Uri(this.app.Urls.Single()), Timeout = TimeSpan.FromSeconds(30) };
    }

    public async Task DisposeAsync()
    {
        this.Client.Dispose();
        if (this.app is null)
        {
            return;
        }

        DurableEngine engine = this.app.Services.GetRequiredService<DurableEngine>();
        using CancellationTokenSource timeout = new(TimeSpan.FromSeconds(30));
        await this.app.StopAsync(timeout.Token);
        await engine.Service.DeleteAsync();
        await this.app.DisposeAsync();
    }
}
