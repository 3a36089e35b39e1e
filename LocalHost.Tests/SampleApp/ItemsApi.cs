using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using FromBodyAttribute = Microsoft.Azure.Functions.Worker.Http.FromBodyAttribute;

namespace SampleApp;

public sealed record ItemRequest(string Name, int Quantity);

public sealed record ItemResponse(long Id, string Tenant, string Name, int Quantity, string Greeting);

/// <summary>HTTP functions with route values, a JSON body and each auth level.</summary>
public sealed class ItemsApi(Greeter greeter)
{
    [Function(nameof(PutItem))]
    public IActionResult PutItem(
        [HttpTrigger(AuthorizationLevel.Anonymous, "put", Route = "tenants/{tenant}/items/{id}")] HttpRequest request,
        string tenant,
        long id,
        [FromBody] ItemRequest body,
        CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        return new OkObjectResult(new ItemResponse(id, tenant, body.Name, body.Quantity, greeter.Greet(body.Name)));
    }

    [Function(nameof(GetSecret))]
    public static Task<IActionResult> GetSecret(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "secret")] HttpRequest request) =>
        Task.FromResult<IActionResult>(new JsonResult(new { secret = "function" }));

    [Function(nameof(GetAdmin))]
    public static IResult GetAdmin(
        [HttpTrigger(AuthorizationLevel.Admin, "get", Route = "admin/ping")] HttpRequest request) =>
        Results.Ok(new { admin = true });

    [Function(nameof(GetTicks))]
    public static IActionResult GetTicks(
        [HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "ticks")] HttpRequest request,
        FunctionContext context) =>
        new OkObjectResult(new { count = ((TickCounter)context.InstanceServices.GetService(typeof(TickCounter))!).Count });
}
