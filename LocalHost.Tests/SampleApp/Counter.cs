using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Entities;

namespace SampleApp;

/// <summary>A counter entity; state set to zero by reset, deleted by delete.</summary>
public sealed class Counter : TaskEntity<int>
{
    public void Add(int amount) => State += amount;

    public int Get() => State;

    public void Delete() => State = default;

    [Function(nameof(Counter))]
    public static Task Dispatch([EntityTrigger] TaskEntityDispatcher dispatcher) => dispatcher.DispatchAsync<Counter>();
}

public static class CounterApi
{
    [Function(nameof(AddToCounter))]
    public static async Task<IActionResult> AddToCounter(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "counters/{key}/add/{amount}")] HttpRequest request,
        string key,
        int amount,
        [DurableClient] DurableTaskClient client,
        CancellationToken cancellationToken)
    {
        await client.Entities.SignalEntityAsync(new EntityInstanceId(nameof(Counter), key), nameof(Counter.Add), amount, cancellation: cancellationToken);
        return new AcceptedResult();
    }

    [Function(nameof(GetCounter))]
    public static async Task<IActionResult> GetCounter(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "counters/{key}")] HttpRequest request,
        string key,
        [DurableClient] DurableTaskClient client,
        CancellationToken cancellationToken)
    {
        var entity = await client.Entities.GetEntityAsync<int>(new EntityInstanceId(nameof(Counter), key), cancellation: cancellationToken);
        return entity is null ? new NotFoundResult() : new OkObjectResult(new { key, value = entity.State });
    }
}
