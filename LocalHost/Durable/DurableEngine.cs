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

    private readonly FunctionCatalog catalog;
    private readonly IServiceProvider services;
    private readonly ILogger<DurableEngine> logger;
    private readonly CancellationTokenSource stopping = new();
    private TaskHubWorker? worker;

    public DurableEngine(FunctionCatalog catalog, IOptions<LocalHostOptions> options, IConfiguration configuration, IServiceProvider services, ILoggerFactory loggerFactory)
    {
        this.catalog = catalog;
        this.services = services;
        this.logger = loggerFactory.CreateLogger<DurableEngine>();
        this.HubName = options.Value.HubName ?? catalog.HubName ?? DefaultHubName;
        string connection = configuration["AzureWebJobsStorage"] is { Length: > 0 } c ? c : "UseDevelopmentStorage=true";
        this.Service = new AzureStorageOrchestrationService(new AzureStorageOrchestrationServiceSettings
        {
            StorageAccountClientProvider = new StorageAccountClientProvider(connection),
            TaskHubName = this.HubName,
            PartitionCount = options.Value.PartitionCount,
            MaxQueuePollingInterval = options.Value.MaxQueuePollingInterval,
            UseSeparateQueueForEntityWorkItems = true,
            ControlQueueVisibilityTimeout = options.Value.QueueVisibilityTimeout,
            WorkItemQueueVisibilityTimeout = options.Value.QueueVisibilityTimeout,
            LoggerFactory = loggerFactory,
        });
        foreach (FunctionInvoker entity in catalog.OfKind(TriggerKind.Entity).Where(_ => !FunctionEntity.IsSupported))
        {
            throw new FunctionStartupException(entity.Name, "this Worker.Extensions.DurableTask version's TaskEntityDispatcher cannot be driven");
        }
    }

    public string HubName { get; }

    public AzureStorageOrchestrationService Service { get; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await this.Service.CreateIfNotExistsAsync();
        DurableTaskShimFactory shims = this.services.GetRequiredService<DurableTaskShimFactory>();
        DataConverter converter = this.services.GetRequiredService<IOptions<DurableTaskWorkerOptions>>().Value.DataConverter;
        IServiceScopeFactory scopes = this.services.GetRequiredService<IServiceScopeFactory>();

        ObjectManager<TaskOrchestration> orchestrations = new();
        foreach (FunctionInvoker function in this.catalog.OfKind(TriggerKind.Orchestration))
        {
            orchestrations.Add(new FactoryCreator<TaskOrchestration>(function.Name,
                () => shims.CreateOrchestration(new TaskName(function.Name), new FunctionOrchestrator(function, this.services, converter))));
        }

        ObjectManager<TaskActivity> activities = new();
        foreach (FunctionInvoker function in this.catalog.OfKind(TriggerKind.Activity))
        {
            FunctionActivity activity = new(function, scopes, this.stopping.Token);
            activities.Add(new FactoryCreator<TaskActivity>(function.Name, () => shims.CreateActivity(new TaskName(function.Name), activity)));
        }

        ObjectManager<TaskEntity> entities = new();
        foreach (FunctionInvoker function in this.catalog.OfKind(TriggerKind.Entity))
        {
            FunctionEntity entity = new(function, scopes, this.stopping.Token);
            entities.Add(new FactoryCreator<TaskEntity>(function.Name, () => entity));
        }

        this.worker = new TaskHubWorker(this.Service, orchestrations, activities, entities, this.services.GetRequiredService<ILoggerFactory>())
        {
            ErrorPropagationMode = ErrorPropagationMode.UseFailureDetails,
        };
        await this.worker.StartAsync();
        Log.DurableStarted(this.logger, this.HubName, orchestrations.Count, activities.Count, entities.Count);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await this.stopping.CancelAsync();
        if (this.worker is not null)
        {
            await this.worker.StopAsync(isForced: false);
            this.worker = null;
            Log.DurableStopped(this.logger, this.HubName);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (this.worker is not null)
        {
            await this.worker.StopAsync(isForced: true);
        }

        this.stopping.Dispose();
    }
}
