using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace SampleApp;

/// <summary>The sample app's composition root, found by LocalHost by convention.</summary>
public static class ServiceRegistration
{
    public static IServiceCollection AddSampleServices(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton(new Greeter(configuration["Sample:Greeting"] ?? "Hello"));
        services.AddSingleton<TickCounter>();
        services.AddSingleton<YearlyCounter>();
        services.AddSingleton<Microsoft.Azure.Functions.Worker.Middleware.IFunctionsWorkerMiddleware, SampleExceptionMiddleware>();
        return services;
    }
}

public sealed class Greeter(string greeting)
{
    public string Greet(string name) => $"{greeting}, {name}!";
}

/// <summary>Counts timer runs so a test can observe them over HTTP.</summary>
public sealed class TickCounter
{
    private int _count;

    public int Count => Volatile.Read(ref _count);

    public void Increment() => Interlocked.Increment(ref _count);
}
