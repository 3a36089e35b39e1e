using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using TenantDb.Functions.Telemetry;

namespace TenantDb.Functions.Tests.Telemetry;

/// <summary>
/// Which exporter the settings turn on: none without a setting, Azure Monitor with a connection string, OTLP with an endpoint.
/// A configured exporter is proven by what reaches a receiver on loopback standing in for its service.
/// </summary>
[Trait("Category", Tier.Unit)]
public sealed class ExporterSelectionTests
{
    /// <summary>A loopback HTTP endpoint that answers 200 and keeps the paths it was sent to.</summary>
    private sealed class Receiver : IDisposable
    {
        private readonly HttpListener _listener = new();
        public ConcurrentQueue<string> Paths { get; } = new();
        public string Url { get; }

        public Receiver()
        {
            var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            var port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            Url = $"http://127.0.0.1:{port}/";
            _listener.Prefixes.Add(Url);
            _listener.Start();
            _ = Task.Run(ServeAsync);
        }

        private async Task ServeAsync()
        {
            while (_listener.IsListening)
            {
                HttpListenerContext context;
                try
                {
                    context = await _listener.GetContextAsync();
                }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
                {
                    return;
                }

                Paths.Enqueue(context.Request.Url!.AbsolutePath);
                context.Response.StatusCode = 200;
                context.Response.Close();
            }
        }

        public void Dispose() => _listener.Close();
    }

    private static ServiceProvider Build(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        return new ServiceCollection()
            .AddSingleton<IConfiguration>(configuration)
            .AddLogging()
            .AddAllocatorTelemetry(configuration)
            .BuildServiceProvider();
    }

    /// <summary>Emits one span and one measurement of the app's own and flushes both providers.</summary>
    private static void EmitAndFlush(ServiceProvider services)
    {
        var tracer = services.GetRequiredService<TracerProvider>();
        var meter = services.GetRequiredService<MeterProvider>();
        using (AllocatorTelemetry.Source.StartActivity("allocate"))
        {
            services.GetRequiredService<AllocatorTelemetry>().Allocation("allocated", TimeSpan.FromMilliseconds(5));
        }

        tracer.ForceFlush(10_000);
        meter.ForceFlush(10_000);
    }

    /// <summary>The SDK's processor chain and metric reader (internal members; what an exporter is added to).</summary>
    private static (object? Processor, object? Reader) Pipeline(ServiceProvider services)
    {
        const BindingFlags Flags = BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public;
        var tracer = services.GetRequiredService<TracerProvider>();
        var meter = services.GetRequiredService<MeterProvider>();
        var processor = tracer.GetType().GetProperty("Processor", Flags) ?? throw new MissingMemberException("TracerProviderSdk.Processor");
        var reader = meter.GetType().GetProperty("Reader", Flags) ?? throw new MissingMemberException("MeterProviderSdk.Reader");
        return (processor.GetValue(tracer), reader.GetValue(meter));
    }

    [Fact]
    public void NoSetting_NoExporter()
    {
        using var services = Build([]);

        EmitAndFlush(services);

        var (processor, reader) = Pipeline(services);
        Assert.IsType<SecretRedaction>(processor);
        Assert.Null(reader);
    }

    [Fact]
    public async Task OtlpEndpoint_ExportsTracesAndMetricsThereOnly()
    {
        using var otlp = new Receiver();
        using var services = Build(new()
        {
            [TelemetryRegistration.OtlpSetting] = otlp.Url,
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
        });

        EmitAndFlush(services);
        await WaitForAsync(() => otlp.Paths.Contains("/v1/traces") && otlp.Paths.Contains("/v1/metrics"));

        Assert.Contains("/v1/traces", otlp.Paths);
        Assert.Contains("/v1/metrics", otlp.Paths);
        Assert.DoesNotContain(otlp.Paths, p => p.StartsWith("/v2", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AzureMonitorConnectionString_ExportsToItsIngestionEndpointOnly()
    {
        using var ingestion = new Receiver();
        using var services = Build(new()
        {
            [TelemetryRegistration.AzureMonitorSetting] = $"InstrumentationKey={Guid.NewGuid()};IngestionEndpoint={ingestion.Url}",
        });

        EmitAndFlush(services);
        await WaitForAsync(() => !ingestion.Paths.IsEmpty);

        Assert.Contains(ingestion.Paths, p => p.Contains("/track", StringComparison.Ordinal));
        Assert.DoesNotContain(ingestion.Paths, p => p.StartsWith("/v1/", StringComparison.Ordinal));
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        var watch = Stopwatch.StartNew();
        while (!condition() && watch.Elapsed < TimeSpan.FromSeconds(15))
        {
            await Task.Delay(100);
        }
    }
}
