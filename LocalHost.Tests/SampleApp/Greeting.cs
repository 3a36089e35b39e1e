using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using FromBodyAttribute = Microsoft.Azure.Functions.Worker.Http.FromBodyAttribute;

namespace SampleApp;

public sealed record GreetingInput(string Name, int DelaySeconds);

/// <summary>One workflow: an activity, a durable timer, a second activity.</summary>
public static class Greeting
{
    [Function(nameof(StartGreeting))]
    public static async Task<IActionResult> StartGreeting(
        [HttpTrigger(AuthorizationLevel.Anonymous, "post", Route = "greetings/{instance_id}")] HttpRequest request,
        string instance_id,
        [FromBody] GreetingInput input,
        [DurableClient] DurableTaskClient client,
        CancellationToken cancellationToken)
    {
        var id = await client.ScheduleNewOrchestrationInstanceAsync(
            nameof(GreetingOrchestrator), input, new StartOrchestrationOptions(instance_id), cancellationToken);
        // The status URL as the Functions host makes it: its public base and its system key, never the request's Host.
        return new AcceptedResult(client.CreateHttpManagementPayload(id).StatusQueryGetUri, new { id });
    }

    [Function(nameof(GreetingOrchestrator))]
    public static async Task<string> GreetingOrchestrator([OrchestrationTrigger] TaskOrchestrationContext context)
    {
        var logger = context.CreateReplaySafeLogger(nameof(GreetingOrchestrator));
        var input = context.GetInput<GreetingInput>()!;
        var first = await context.CallActivityAsync<string>(nameof(SayHello), input.Name);
        context.SetCustomStatus("waiting");
        await context.CreateTimer(context.CurrentUtcDateTime.AddSeconds(input.DelaySeconds), CancellationToken.None);
        var second = await context.CallActivityAsync<string>(nameof(SayHello), input.Name + " again");
        logger.LogInformation("Greeted {Name}", input.Name);
        return first + " " + second;
    }

    [Function(nameof(SayHello))]
    public static string SayHello([ActivityTrigger] string name, FunctionContext context)
    {
        var greeter = (Greeter)context.InstanceServices.GetService(typeof(Greeter))!;
        return greeter.Greet(name);
    }

    [Function(nameof(WaitForApproval))]
    public static async Task<bool> WaitForApproval([OrchestrationTrigger] TaskOrchestrationContext context)
    {
        return await context.WaitForExternalEvent<bool>("Approval");
    }

    [Function(nameof(StartApproval))]
    public static async Task<IActionResult> StartApproval(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "approvals/{instance_id}")] HttpRequest request,
        string instance_id,
        [DurableClient] DurableTaskClient client,
        CancellationToken cancellationToken)
    {
        await client.ScheduleNewOrchestrationInstanceAsync(
            nameof(WaitForApproval), null, new StartOrchestrationOptions(instance_id), cancellationToken);
        var started = await client.WaitForInstanceStartAsync(instance_id, cancellationToken);
        return new ObjectResult(new { id = started.InstanceId, status = started.RuntimeStatus.ToString() }) { StatusCode = 202 };
    }
}
