using Azure.Monitor.OpenTelemetry.Exporter;
using Microsoft.Azure.Functions.Worker.OpenTelemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace TenantDb.Functions.Telemetry;

/// <summary>
/// OpenTelemetry for both hosts (the Functions worker and LocalHost): the app's meter and spans, the HTTP request, Npgsql's
/// catalog and pool statements (secrets redacted), and an exporter only where one is configured: Azure Monitor when
/// <see cref="AzureMonitorSetting"/> is set, OTLP when <see cref="OtlpSetting"/> is set (both when both are), none otherwise.
/// </summary>
public static class TelemetryRegistration
{
    public const string AzureMonitorSetting = "APPLICATIONINSIGHTS_CONNECTION_STRING";
    public const string OtlpSetting = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>ASP.NET Core's own source: the HTTP request span under LocalHost and under the worker's ASP.NET Core integration.</summary>
    private const string AspNetCoreSource = "Microsoft.AspNetCore";

    public static IServiceCollection AddAllocatorTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddMetrics();
        services.AddSingleton<PoolSnapshot>();
        services.AddOptions<TelemetryOptions>().BindConfiguration(TelemetryOptions.Section);
        services.AddSingleton<AllocatorTelemetry>();

        var azureMonitor = configuration[AzureMonitorSetting];
        var otlp = !string.IsNullOrWhiteSpace(configuration[OtlpSetting]);
        services.AddOpenTelemetry()
            .UseFunctionsWorkerDefaults()
            .WithTracing(tracing =>
            {
                // First in the chain, so every exporter after it sees the redacted span.
                tracing.AddProcessor(new SecretRedaction())
                    .AddSource(AllocatorTelemetry.Name, AspNetCoreSource)
                    .AddNpgsql();
                if (!string.IsNullOrWhiteSpace(azureMonitor))
                {
                    tracing.AddAzureMonitorTraceExporter(o => AzureMonitor(o, azureMonitor));
                }

                if (otlp)
                {
                    tracing.AddOtlpExporter();
                }
            })
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(AllocatorTelemetry.Name).AddNpgsqlInstrumentation();
                if (!string.IsNullOrWhiteSpace(azureMonitor))
                {
                    metrics.AddAzureMonitorMetricExporter(o => AzureMonitor(o, azureMonitor));
                }

                if (otlp)
                {
                    metrics.AddOtlpExporter();
                }
            });
        return services;
    }

    private static void AzureMonitor(AzureMonitorExporterOptions options, string connectionString)
    {
        options.ConnectionString = connectionString;
        // Nothing of the app's telemetry is kept on the worker's disk when the ingestion endpoint does not answer.
        options.DisableOfflineStorage = true;
    }
}
