
namespace TenantDb.LocalHost;

/// <summary>LocalHost's structured log events.</summary>
internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Serving {FunctionCount} functions of {AppAssembly} from {AppDirectory}")]
    public static partial void Serving(ILogger logger, int functionCount, string? appAssembly, string appDirectory);

    [LoggerMessage(2, LogLevel.Information, "HTTP function {FunctionName} at {Pattern} (auth {AuthLevel})")]
    public static partial void HttpFunctionMapped(ILogger logger, string functionName, string pattern, AuthLevel authLevel);

    [LoggerMessage(3, LogLevel.Warning, "Request to {FunctionName} did not bind: {Reason}")]
    public static partial void RequestNotBound(ILogger logger, string functionName, string reason);

    [LoggerMessage(4, LogLevel.Error, "Function {FunctionName} failed")]
    public static partial void FunctionFailed(ILogger logger, Exception exception, string functionName);

    [LoggerMessage(5, LogLevel.Information, "Timer function {FunctionName} scheduled {Schedule} (run on start-up {RunOnStartup})")]
    public static partial void TimerScheduled(ILogger logger, string functionName, string schedule, bool runOnStartup);

    [LoggerMessage(6, LogLevel.Warning, "Timer function {FunctionName} still running; tick skipped")]
    public static partial void TimerTickSkipped(ILogger logger, string functionName);

    [LoggerMessage(7, LogLevel.Debug, "Timer function {FunctionName} ran")]
    public static partial void TimerRan(ILogger logger, string functionName);

    [LoggerMessage(8, LogLevel.Information, "Timer function {FunctionName} cancelled by shutdown")]
    public static partial void TimerCancelled(ILogger logger, string functionName);

    [LoggerMessage(9, LogLevel.Information, "Durable task hub {HubName} started with {OrchestrationCount} orchestrations, {ActivityCount} activities, {EntityCount} entities")]
    public static partial void DurableStarted(ILogger logger, string hubName, int orchestrationCount, int activityCount, int entityCount);

    [LoggerMessage(10, LogLevel.Information, "Durable task hub {HubName} stopped")]
    public static partial void DurableStopped(ILogger logger, string hubName);

    [LoggerMessage(11, LogLevel.Information, "App service registration {Count} hook(s) called from {AppAssembly}")]
    public static partial void ServicesRegistered(ILogger logger, int count, string? appAssembly);

    [LoggerMessage(12, LogLevel.Information, "Durable management routes at {Pattern}")]
    public static partial void ManagementMapped(ILogger logger, string pattern);
}
