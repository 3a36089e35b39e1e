using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Worker;
using Microsoft.DurableTask.Worker.Shims;
using Microsoft.Extensions.Options;
using TenantDb.LocalHost.Durable;

namespace TenantDb.LocalHost;

/// <summary>Builds the web application that serves a Functions app's classes from its functions.metadata.</summary>
public static class LocalFunctionsHost
{
    private static readonly Dictionary<string, string> SwitchMappings = new()
    {
        ["--app"] = LocalHostOptions.Section + ":AppPath",
        ["--port"] = LocalHostOptions.Section + ":Port",
    };

    /// <summary>
    /// Reads configuration (appsettings, environment, command line; the app's local.settings.json "Values" below them),
    /// loads the app, validates every function, registers the app's services and maps its triggers.
    /// Throws <see cref="FunctionStartupException"/> for a function it cannot serve.
    /// </summary>
    public static WebApplication Build(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        // appsettings.json lives beside the binary, wherever the host is started from.
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.AddCommandLine(args, SwitchMappings);
        configure?.Invoke(builder);

        var appDirectory = AppLoader.ResolveAppDirectory(builder.Configuration);
        AppLoader.AddLocalSettings(builder.Configuration, appDirectory);
        var options = builder.Configuration.GetSection(LocalHostOptions.Section).Get<LocalHostOptions>() ?? new LocalHostOptions();
        var origin = IPAddress.TryParse(options.Address, out var ip) && ip.AddressFamily == AddressFamily.InterNetworkV6
            ? $"[{options.Address}]:{options.Port}"
            : $"{options.Address}:{options.Port}";
        builder.WebHost.UseUrls($"http://{origin}");
        AddHostName(builder.Configuration, options.Port == 0 ? null : origin);

        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.IncludeScopes = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
        });

        var catalog = FunctionCatalog.Load(appDirectory);
        var services = builder.Services;
        services.AddSingleton(catalog);
        services.AddOptions<LocalHostOptions>().BindConfiguration(LocalHostOptions.Section);
        services.AddSingleton(TimeProvider.System);
        services.AddMvcCore();
        services.AddProblemDetails();
        FunctionKeys keys = new(options);
        services.AddSingleton(keys);

        if (catalog.UsesDurable)
        {
            services.AddOptions<DurableTaskWorkerOptions>().Configure(o => o.EnableEntitySupport = true);
            services.AddSingleton(sp => new DurableTaskShimFactory(sp.GetRequiredService<IOptions<DurableTaskWorkerOptions>>().Value, sp.GetRequiredService<ILoggerFactory>()));
            services.AddSingleton<DurableEngine>();
            services.AddHostedService(sp => sp.GetRequiredService<DurableEngine>());
            services.AddSingleton<DurableTaskClient>(sp => new LocalDurableTaskClient(
                sp.GetRequiredService<DurableEngine>(), sp.GetRequiredService<IOptions<DurableTaskWorkerOptions>>().Value.DataConverter));
            services.AddSingleton<DurableClientBinding>();
        }

        foreach (var timer in catalog.OfKind(TriggerKind.Timer))
        {
            var schedule = TimerSchedule.Parse(timer.Name, timer.Metadata.Trigger.Schedule, builder.Configuration);
            services.AddSingleton<IHostedService>(sp => ActivatorUtilities.CreateInstance<TimerFunctionService>(sp, timer, schedule));
        }

        services.AddSingleton<AdminFunctionRuns>();
        services.AddHostedService(sp => sp.GetRequiredService<AdminFunctionRuns>());

        var hooks = AppLoader.RegisterAppServices(catalog.App, services, builder.Configuration);

        var app = builder.Build();
        Log.Serving(app.Logger, catalog.Functions.Count, catalog.App.GetName().Name, appDirectory);
        Log.ServicesRegistered(app.Logger, hooks, catalog.App.GetName().Name);
        // An error answered without a body (routing's 404 and 405, a bare NotFound or 410 of the management routes) gets a
        // problem+json body too, whatever the request's Accept header says: every error of this host is problem+json.
        app.UseStatusCodePages(context => Problems.WriteAsync(context.HttpContext, context.HttpContext.Response.StatusCode,
            ReasonPhrases.GetReasonPhrase(context.HttpContext.Response.StatusCode), "The request was refused."));
        app.MapHttpFunctions(catalog, keys);
        if (keys.HasMasterKey)
        {
            AdminFunctionRuns.Map(app, catalog, keys);
        }
        if (catalog.UsesDurable)
        {
            if (!keys.HasMasterKey)
            {
                throw new InvalidOperationException($"The durable management routes need keys; set {LocalHostOptions.Section}:MasterKey.");
            }

            if (options.MaxManagementBodyBytes < 1)
            {
                throw new InvalidOperationException($"{LocalHostOptions.Section}:MaxManagementBodyBytes must be at least 1.");
            }

            app.MapDurableManagement(keys, options.MaxManagementBodyBytes);
        }

        return app;
    }

    /// <summary>
    /// WEBSITE_HOSTNAME as the Functions platform sets it (Core Tools: localhost:port): the public origin that status URLs
    /// and the app's own URLs are built on. Configured: checked; unset: this host's address and port (unless the port is
    /// picked at start, then the durable binding reads the address Kestrel took).
    /// </summary>
    private static void AddHostName(ConfigurationManager configuration, string? origin)
    {
        var configured = configuration[DurableClientBinding.HostNameSetting];
        if (!string.IsNullOrEmpty(configured))
        {
            if (!DurableClientBinding.IsValidHostName(configured))
            {
                throw new InvalidOperationException($"{DurableClientBinding.HostNameSetting} must be a host name with an optional port, e.g. tenantdb.example.com or 127.0.0.1:7071.");
            }

            return;
        }

        if (origin is not null)
        {
            configuration.AddInMemoryCollection([new(DurableClientBinding.HostNameSetting, origin)]);
        }
    }
}
