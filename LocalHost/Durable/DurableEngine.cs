using DurableTask.AzureStorage;
using DurableTask.Core;
using DurableTask.Core.Entities;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Worker;
using Microsoft.DurableTask.Worker.Shims;
using Microsoft.Extensions.Options;

namespace TenantDb.LocalHost.Durable;

/// <summary>
/// The Durable Task engine Durable Functions runs on: <see cref="TaskHubWorker"/> over
/// <see cref="AzureStorageOrchestrationService"/> (Azurite locally), with the app's orchestrators, activities and
/// entities registered through <see cref="DurableTaskShimFactory"/>.
/// </summary>
internal sealed class DurableEngine : IHostedService, IAsyncDisposable
{
    public const string DefaultHubName = "TenantDbLocal";

    private readonly FunctionCatalog _catalog;
    private readonly IServiceProvider _services;
    private readonly ILogger<DurableEngine> _logger;
    private readonly CancellationTokenSource _stopping = new();
    private TaskHubWorker? _worker;

    public DurableEngine(FunctionCatalog catalog, IOptions<LocalHostOptions> options, IConfiguration configuration, IServiceProvider services, ILoggerFactory loggerFactory)
    {
        _catalog = catalog;
        _services = services;
        _logger = loggerFactory.CreateLogger<DurableEngine>();
        HubName = options.Value.HubName ?? catalog.HubName ?? DefaultHubName;
        var connection = configuration["AzureWebJobsStorage"] is { Length: > 0 } c ? c : "UseDevelopmentStorage=true";
        Service = new AzureStorageOrchestrationService(new AzureStorageOrchestrationServiceSettings
        {
            StorageAccountClientProvider = new StorageAccountClientProvider(connection),
            TaskHubName = HubName,
            PartitionCount = options.Value.PartitionCount,
            MaxQueuePollingInterval = options.Value.MaxQueuePollingInterval,
            UseSeparateQueueForEntityWorkItems = true,
            ControlQueueVisibilityTimeout = options.Value.QueueVisibilityTimeout,
            WorkItemQueueVisibilityTimeout = options.Value.QueueVisibilityTimeout,
            LoggerFactory = loggerFactory,
        });
        foreach (var entity in catalog.OfKind(TriggerKind.Entity).Where(_ => !FunctionEntity.IsSupported))
        {
            throw new FunctionStartupException(entity.Name, "this Worker.Extensions.DurableTask version's TaskEntityDispatcher cannot be driven");
        }
    }

    public string HubName { get; }

    public AzureStorageOrchestrationService Service { get; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await Service.CreateIfNotExistsAsync();
        var shims = _services.GetRequiredService<DurableTaskShimFactory>();
        var converter = _services.GetRequiredService<IOptions<DurableTaskWorkerOptions>>().Value.DataConverter;
        var scopes = _services.GetRequiredService<IServiceScopeFactory>();

        ObjectManager<TaskOrchestration> orchestrations = new();
        foreach (var function in _catalog.OfKind(TriggerKind.Orchestration))
        {
            orchestrations.Add(new FactoryCreator<TaskOrchestration>(function.Name,
                () => shims.CreateOrchestration(new TaskName(function.Name), new FunctionOrchestrator(function, _services, converter))));
        }

        ObjectManager<TaskActivity> activities = new();
        foreach (var function in _catalog.OfKind(TriggerKind.Activity))
        {
            FunctionActivity activity = new(function, scopes, _stopping.Token);
            activities.Add(new FactoryCreator<TaskActivity>(function.Name, () => shims.CreateActivity(new TaskName(function.Name), activity)));
        }

        ObjectManager<TaskEntity> entities = new();
        foreach (var function in _catalog.OfKind(TriggerKind.Entity))
        {
            FunctionEntity entity = new(function, scopes, _stopping.Token);
            entities.Add(new FactoryCreator<TaskEntity>(function.Name, () => entity));
        }

        _worker = new TaskHubWorker(Service, orchestrations, activities, entities, _services.GetRequiredService<ILoggerFactory>())
        {
            ErrorPropagationMode = ErrorPropagationMode.UseFailureDetails,
        };
        await _worker.StartAsync();
        Log.DurableStarted(_logger, HubName, orchestrations.Count, activities.Count, entities.Count);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        if (_worker is not null)
        {
            await _worker.StopAsync(isForced: false);
            _worker = null;
            Log.DurableStopped(_logger, HubName);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_worker is not null)
        {
            await _worker.StopAsync(isForced: true);
        }

        _stopping.Dispose();
    }
}
