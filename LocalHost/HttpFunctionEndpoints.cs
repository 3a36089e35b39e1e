using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Abstractions;
using Microsoft.Azure.Functions.Worker.Middleware;

namespace TenantDb.LocalHost;

/// <summary>Maps each HTTP-triggered function to a Kestrel route: auth, binding, invocation, result execution.</summary>
internal static class HttpFunctionEndpoints
{
    public static void MapHttpFunctions(this WebApplication app, FunctionCatalog catalog, FunctionKeys keys)
    {
        foreach (var function in catalog.OfKind(TriggerKind.Http))
        {
            var trigger = function.Metadata.Trigger;
            var level = FunctionKeys.Parse(function.Name, trigger.AuthLevel);
            if (level != AuthLevel.Anonymous && !keys.HasMasterKey)
            {
                throw new FunctionStartupException(function.Name, $"it needs keys; set {LocalHostOptions.Section}:MasterKey (and {LocalHostOptions.Section}:FunctionKeys)");
            }

            var route = trigger.Route ?? function.Name;
            var pattern = catalog.RoutePrefix.Length == 0 ? "/" + route.TrimStart('/') : $"/{catalog.RoutePrefix}/{route.TrimStart('/')}";
            RequestDelegate handler = http => HandleAsync(http, function, level, keys);
            var endpoint = trigger.Methods.Count == 0
                ? app.Map(pattern, handler)
                : app.MapMethods(pattern, trigger.Methods.Select(m => m.ToUpperInvariant()), handler);
            endpoint.WithDisplayName(function.Name);
            Log.HttpFunctionMapped(app.Logger, function.Name, pattern, level);
        }
    }

    private static async Task HandleAsync(HttpContext http, FunctionInvoker function, AuthLevel level, FunctionKeys keys)
    {
        var logger = http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("TenantDb.LocalHost.Http");
        if (!keys.IsAuthorized(http.Request, level, out var principal))
        {
            await Problems.WriteAsync(http, StatusCodes.Status401Unauthorized, "Unauthorized", "A valid function key is required.");
            return;
        }

        // As the host's key authentication does: the key's level and name (never its value) on the request.
        if (principal is not null)
        {
            http.User = principal;
        }

        Invocation invocation = new(function, http.RequestServices, http.RequestAborted) { Http = http };
        object? result;
        try
        {
            result = await InvokeThroughMiddlewareAsync(http, function, invocation);
        }
        catch (RequestBindingException e)
        {
            Log.RequestNotBound(logger, function.Name, e.Message);
            await Problems.WriteAsync(http, StatusCodes.Status400BadRequest, "Bad Request", e.Message);
            return;
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            return;
        }
        catch (Exception e)
        {
            Log.FunctionFailed(logger, e, function.Name);
            if (!http.Response.HasStarted)
            {
                await Problems.WriteAsync(http, StatusCodes.Status500InternalServerError, "Internal Server Error", "The function failed.");
            }

            return;
        }

        await ExecuteResultAsync(http, result, function.ResultType == typeof(void));
    }

    /// <summary>
    /// Runs the function inside the app's worker middleware, as the Functions host does: every
    /// <see cref="IFunctionsWorkerMiddleware"/> the app registers as a service, in registration order, with the
    /// request's <see cref="HttpContext"/> where <c>GetHttpContext()</c> finds it. A request that cannot be bound stays
    /// LocalHost's 400: its binding error passes the middleware untouched.
    /// </summary>
    private static async Task<object?> InvokeThroughMiddlewareAsync(HttpContext http, FunctionInvoker function, Invocation invocation)
    {
        var middleware = http.RequestServices.GetServices<IFunctionsWorkerMiddleware>().ToArray();
        if (middleware.Length == 0)
        {
            return await function.InvokeAsync(invocation);
        }

        object? result = null;
        RequestBindingException? notBound = null;
        FunctionExecutionDelegate pipeline = async _ =>
        {
            try
            {
                result = await function.InvokeAsync(invocation);
            }
            catch (RequestBindingException e)
            {
                notBound = e;
            }
        };
        for (var i = middleware.Length - 1; i >= 0; i--)
        {
            var outer = middleware[i];
            var inner = pipeline;
            pipeline = context => outer.Invoke(context, inner);
        }

        invocation.FunctionContext.Items[HttpContextKey] = http;
        await pipeline(invocation.FunctionContext);
        return notBound is null ? result : throw notBound;
    }

    // Where the worker's ASP.NET Core integration keeps the request (FunctionContext.GetHttpContext() reads it).
    private const string HttpContextKey = "HttpRequestContext";

    private static Task ExecuteResultAsync(HttpContext http, object? result, bool isVoid)
    {
        switch (result)
        {
            case IActionResult actionResult:
                return actionResult.ExecuteResultAsync(new ActionContext(http, http.GetRouteData(), new ActionDescriptor()));
            case IResult httpResult:
                return httpResult.ExecuteAsync(http);
            case null when isVoid || http.Response.HasStarted:
                return Task.CompletedTask;
            case null:
                http.Response.StatusCode = StatusCodes.Status204NoContent;
                return Task.CompletedTask;
            default:
                return new ObjectResult(result).ExecuteResultAsync(new ActionContext(http, http.GetRouteData(), new ActionDescriptor()));
        }
    }
}

/// <summary>application/problem+json answers.</summary>
internal static class Problems
{
    public static Task WriteAsync(HttpContext http, int status, string title, string detail) =>
        Results.Problem(detail: detail, statusCode: status, title: title).ExecuteAsync(http);
}
