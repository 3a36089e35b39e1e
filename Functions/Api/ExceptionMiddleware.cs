using System.Net.Sockets;
using System.Text.Json;
using Grpc.Core;
using Microsoft.AspNetCore.Http;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Middleware;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using TenantDb.Functions.Allocations;

namespace TenantDb.Functions.Api;

/// <summary>
/// The one place unexpected exceptions become a problem+json answer (HTTP) instead of leaking a stack trace: a fault of
/// something the request depends on (<see cref="Faults"/>) is a 503 with <c>Retry-After</c>, anything else a 500.
/// Neither carries the exception's text (it can name hosts, users or connection settings).
/// </summary>
public sealed partial class ExceptionMiddleware(ILogger<ExceptionMiddleware> logger, IOptions<AllocationOptions> options) : IFunctionsWorkerMiddleware
{
    public async Task Invoke(FunctionContext context, FunctionExecutionDelegate next)
    {
        try
        {
            await next(context);
        }
        catch (Exception e) when (context.GetHttpContext() is { Response.HasStarted: false } http
            && !(e is OperationCanceledException && http.RequestAborted.IsCancellationRequested))
        {
            Microsoft.AspNetCore.Mvc.JsonResult problem;
            if (Faults.Classify(e) is { } fault)
            {
                LogFault(e, context.FunctionDefinition.Name, context.InvocationId, fault.Type);
                var retryAfter = options.Value.RetryAfterSeconds;
                problem = Problems.Unavailable(fault.Type, fault.Detail, retryAfter);
                http.Response.Headers.RetryAfter = retryAfter.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            else
            {
                LogUnhandled(e, context.FunctionDefinition.Name, context.InvocationId);
                problem = Problems.Internal(context.InvocationId);
            }

            http.Response.StatusCode = problem.StatusCode ?? StatusCodes.Status500InternalServerError;
            http.Response.ContentType = Problems.ContentType;
            await http.Response.WriteAsync(JsonSerializer.Serialize(problem.Value, ApiJson.Options));
        }
    }

    [LoggerMessage(LogLevel.Error, "Function {Function} failed (invocation {InvocationId})")]
    private partial void LogUnhandled(Exception e, string function, string invocationId);

    [LoggerMessage(LogLevel.Warning, "Function {Function} answered 503 {Fault} (invocation {InvocationId})")]
    private partial void LogFault(Exception e, string function, string invocationId, string fault);
}

/// <summary>A fault the caller can only wait out: a stable problem type and a fixed text.</summary>
public sealed record Fault(string Type, string Detail);

/// <summary>
/// Which exceptions are faults of a dependency (503) rather than bugs (500): a PostgreSQL server (catalog or pool) that
/// cannot be reached, drops the connection, is shutting down or out of connections; a timeout; the Durable task store
/// unreachable. The chain of inner exceptions is searched, outermost first.
/// </summary>
public static class Faults
{
    public static readonly Fault DatabaseUnavailable = new("database-unavailable",
        "A database server this request needs did not answer or refused new work. Retry later.");

    public static readonly Fault Timeout = new("timeout", "The request did not finish in time. Retry later.");

    public static readonly Fault StorageUnavailable = new("storage-unavailable",
        "The durable task store did not answer. Retry later.");

    public static Fault? Classify(Exception exception)
    {
        for (var e = exception; e is not null; e = (e as AggregateException)?.InnerExceptions.FirstOrDefault() ?? e.InnerException)
        {
            switch (e)
            {
                // A real SQL error (a bug, a constraint) is not a fault; connection, shutdown, resources, serialization are.
                case PostgresException pg:
                    return pg.IsTransient ? DatabaseUnavailable : null;
                // Connection refused or broken, pool exhausted, command or connect timeout.
                case NpgsqlException:
                    return DatabaseUnavailable;
                // The caller's own abort is filtered out before; what is left is a bound inside the app that ran out
                // (a compensation timeout, a host shutting down).
                case TimeoutException or OperationCanceledException:
                    return Timeout;
                case RpcException { StatusCode: StatusCode.Unavailable or StatusCode.DeadlineExceeded }:
                    return StorageUnavailable;
                case HttpRequestException or SocketException:
                    return StorageUnavailable;
            }
        }

        return null;
    }
}
