using System.Text.Json;
using Microsoft.Azure.Functions.Worker;

namespace TenantDb.LocalHost;

/// <summary>
/// The Functions host's <c>POST /admin/functions/{name}</c>: the master key runs a timer function now, outside its schedule
/// (body <c>{"input": ""}</c>), answering 202 at once; the run goes on in the background and is awaited at shutdown.
/// </summary>
internal sealed class AdminFunctionRuns(IServiceScopeFactory scopes, ILogger<AdminFunctionRuns> logger) : IHostedService
{
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Task> _runs = [];

    public static void Map(WebApplication app, FunctionCatalog catalog, FunctionKeys keys)
    {
        var timers = catalog.OfKind(TriggerKind.Timer).ToDictionary(f => f.Name, StringComparer.OrdinalIgnoreCase);
        app.MapPost("/admin/functions/{name}", async (HttpContext http, string name) =>
        {
            if (!keys.IsAuthorized(http.Request, AuthLevel.Admin))
            {
                await Problems.WriteAsync(http, StatusCodes.Status401Unauthorized, "Unauthorized", "The master key is required.");
                return;
            }

            if (!timers.TryGetValue(name, out var function))
            {
                await Problems.WriteAsync(http, StatusCodes.Status404NotFound, "Not Found", "No timer function has that name.");
                return;
            }

            if (!await IsInputBodyAsync(http))
            {
                await Problems.WriteAsync(http, StatusCodes.Status400BadRequest, "Bad Request", "The body must be a JSON object such as {\"input\": \"\"}.");
                return;
            }

            http.RequestServices.GetRequiredService<AdminFunctionRuns>().Start(function);
            http.Response.StatusCode = StatusCodes.Status202Accepted;
        });
    }

    private static async Task<bool> IsInputBodyAsync(HttpContext http)
    {
        try
        {
            using var body = await JsonDocument.ParseAsync(http.Request.Body, cancellationToken: http.RequestAborted);
            return body.RootElement.ValueKind == JsonValueKind.Object;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private void Start(FunctionInvoker function)
    {
        lock (_runs)
        {
            _runs.RemoveAll(r => r.IsCompleted);
            _runs.Add(RunAsync(function));
        }
    }

    private async Task RunAsync(FunctionInvoker function)
    {
        await Task.Yield();
        await using var scope = scopes.CreateAsyncScope();
        try
        {
            TimerInfo info = new() { IsPastDue = false };
            await function.InvokeAsync(new Invocation(function, scope.ServiceProvider, _stopping.Token) { Trigger = info });
            Log.TimerRan(logger, function.Name);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            Log.TimerCancelled(logger, function.Name);
        }
        catch (Exception e)
        {
            Log.FunctionFailed(logger, e, function.Name);
        }
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        Task[] runs;
        lock (_runs)
        {
            runs = [.. _runs];
        }

        await Task.WhenAll(runs).WaitAsync(cancellationToken);
    }
}
