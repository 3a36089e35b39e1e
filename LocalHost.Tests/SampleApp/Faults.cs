using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Middleware;

namespace SampleApp;

/// <summary>A function that throws: a <see cref="TimeoutException"/> for <c>timeout</c>, anything else otherwise.</summary>
public sealed class Boom
{
    [Function(nameof(Boom))]
    public string Run([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "boom/{kind}")] HttpRequest request, string kind) =>
        kind == "timeout" ? throw new TimeoutException("secret-detail-timeout") : throw new InvalidOperationException("secret-detail-boom");
}

/// <summary>
/// The app's worker middleware, registered as a service as the allocator registers its own: a timeout answers 503 with
/// Retry-After, anything else 500, both problem+json with no exception text.
/// </summary>
public sealed class SampleExceptionMiddleware : IFunctionsWorkerMiddleware
{
    public async Task Invoke(FunctionContext context, FunctionExecutionDelegate next)
    {
        try
        {
            await next(context);
        }
        catch (Exception e) when (context.GetHttpContext() is { Response.HasStarted: false } http)
        {
            var status = e is TimeoutException ? StatusCodes.Status503ServiceUnavailable : StatusCodes.Status500InternalServerError;
            if (status == StatusCodes.Status503ServiceUnavailable)
            {
                http.Response.Headers.RetryAfter = "7";
            }

            http.Response.StatusCode = status;
            http.Response.ContentType = "application/problem+json";
            await http.Response.WriteAsync(JsonSerializer.Serialize(new { type = "sample-middleware", status, title = "Sample middleware" }));
        }
    }
}
