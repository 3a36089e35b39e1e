using System.Collections.Immutable;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Abstractions;
using Microsoft.AspNetCore.Routing;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Middleware;
using Microsoft.Extensions.DependencyInjection;
using TenantDb.Functions.Api;

namespace TenantDb.Functions.Tests.Infrastructure;

/// <summary>
/// Calls an HTTP function as the host does: inside the app's middleware (<see cref="ExceptionMiddleware"/> outermost), the result executed
/// onto the response; returns what the wire carries (status, headers, body).
/// </summary>
public static class ThroughMiddleware
{
    private static readonly IServiceProvider Mvc = new ServiceCollection().AddLogging().AddMvcCore().Services.BuildServiceProvider();

    public static async Task<(int Status, IHeaderDictionary Headers, string Body)> CallAsync(
        IServiceProvider app, HttpRequest request, Func<Task<IActionResult>> function)
    {
        var http = request.HttpContext;
        http.RequestServices = Mvc;
        var body = new MemoryStream();
        http.Response.Body = body;
        var context = new Context(app, http);
        FunctionExecutionDelegate pipeline = async _ =>
        {
            var result = await function();
            await result.ExecuteResultAsync(new ActionContext(http, new RouteData(), new ActionDescriptor()));
        };
        // Every middleware the app registers, in registration order (ExceptionMiddleware outermost), as the hosts run them.
        foreach (var middleware in app.GetServices<IFunctionsWorkerMiddleware>().Reverse())
        {
            var inner = pipeline;
            pipeline = c => middleware.Invoke(c, inner);
        }

        await pipeline(context);
        return (http.Response.StatusCode, http.Response.Headers, System.Text.Encoding.UTF8.GetString(body.ToArray()));
    }

    public static JsonElement Json(string body)
    {
        using var doc = JsonDocument.Parse(body);
        return doc.RootElement.Clone();
    }

    private sealed class Context(IServiceProvider services, HttpContext http) : FunctionContext
    {
        public override string InvocationId { get; } = Guid.NewGuid().ToString();
        public override string FunctionId => "test";
        public override TraceContext TraceContext => null!;
        public override BindingContext BindingContext => null!;
        public override RetryContext RetryContext => null!;
        public override IServiceProvider InstanceServices { get; set; } = services;
        public override FunctionDefinition FunctionDefinition { get; } = new Definition();
        public override IDictionary<object, object> Items { get; set; } = new Dictionary<object, object> { ["HttpRequestContext"] = http };
        public override IInvocationFeatures Features => null!;
        public override CancellationToken CancellationToken => http.RequestAborted;
    }

    private sealed class Definition : FunctionDefinition
    {
        public override ImmutableArray<FunctionParameter> Parameters => [];
        public override string PathToAssembly => "";
        public override string EntryPoint => "";
        public override string Id => "test";
        public override string Name => "test";
        public override IImmutableDictionary<string, BindingMetadata> InputBindings => ImmutableDictionary<string, BindingMetadata>.Empty;
        public override IImmutableDictionary<string, BindingMetadata> OutputBindings => ImmutableDictionary<string, BindingMetadata>.Empty;
    }
}
