using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Middleware;
using Microsoft.Extensions.Logging;

namespace TenantDb.Functions.Api;

/// <summary>The one place unexpected exceptions become a problem+json 500 (HTTP) instead of leaking a stack trace.</summary>
public sealed partial class ExceptionMiddleware(ILogger<ExceptionMiddleware> logger) : IFunctionsWorkerMiddleware
{
    public async Task Invoke(FunctionContext context, FunctionExecutionDelegate next)
    {
        try
        {
            await next(context);
        }
        catch (Exception e) when (context.GetHttpContext() is { Response.HasStarted: false } http)
        {
            LogUnhandled(e, context.FunctionDefinition.Name, context.InvocationId);
            var problem = Problems.Internal(context.InvocationId);
            http.Response.StatusCode = StatusCodes.Status500InternalServerError;
            http.Response.ContentType = Problems.ContentType;
            await http.Response.WriteAsync(JsonSerializer.Serialize(problem.Value, ApiJson.Options));
        }
    }

    [LoggerMessage(LogLevel.Error, "Function {Function} failed (invocation {InvocationId})")]
    private partial void LogUnhandled(Exception e, string function, string invocationId);
}
