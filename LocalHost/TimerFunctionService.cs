using System.Globalization;
using Microsoft.Azure.Functions.Worker;
using NCrontab;

namespace TenantDb.LocalHost;

/// <summary>A timer function's schedule: six-field CRON (seconds first), five-field CRON, or a TimeSpan interval.</summary>
internal sealed class TimerSchedule
{
    private readonly CrontabSchedule? _cron;
    private readonly TimeSpan _interval;

    private TimerSchedule(CrontabSchedule? cron, TimeSpan interval, string expression)
    {
        _cron = cron;
        _interval = interval;
        Expression = expression;
    }

    public string Expression { get; }

    /// <summary>Parses the metadata schedule, resolving <c>%Setting%</c> from configuration.</summary>
    public static TimerSchedule Parse(string functionName, string? schedule, IConfiguration configuration)
    {
        if (string.IsNullOrWhiteSpace(schedule))
        {
            throw new FunctionStartupException(functionName, "its timer has no schedule");
        }

        var expression = schedule.Trim();
        if (expression.Length > 2 && expression.StartsWith('%') && expression.EndsWith('%'))
        {
            var setting = expression[1..^1];
            expression = configuration[setting]?.Trim() is { Length: > 0 } value
                ? value
                : throw new FunctionStartupException(functionName, $"its schedule setting '{setting}' is not configured");
        }

        var fields = expression.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        if (fields is 5 or 6)
        {
            var cron = CrontabSchedule.TryParse(expression, new CrontabSchedule.ParseOptions { IncludingSeconds = fields == 6 });
            return cron is not null
                ? new TimerSchedule(cron, TimeSpan.Zero, expression)
                : throw new FunctionStartupException(functionName, $"its schedule '{expression}' is not a valid CRON expression");
        }

        return TimeSpan.TryParse(expression, CultureInfo.InvariantCulture, out var interval) && interval > TimeSpan.Zero
            ? new TimerSchedule(null, interval, expression)
            : throw new FunctionStartupException(functionName, $"its schedule '{expression}' is neither CRON nor a TimeSpan");
    }

    public DateTime Next(DateTime utcNow) => _cron?.GetNextOccurrence(utcNow) ?? utcNow + _interval;
}

/// <summary>Runs one timer function on its schedule; a tick is skipped while the previous run is still going.</summary>
internal sealed class TimerFunctionService(
    FunctionInvoker function,
    TimerSchedule schedule,
    IServiceScopeFactory scopes,
    TimeProvider time,
    ILogger<TimerFunctionService> logger) : BackgroundService
{
    private Task _running = Task.CompletedTask;
    private DateTime _last;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        Log.TimerScheduled(logger, function.Name, schedule.Expression, function.Metadata.Trigger.RunOnStartup);
        if (function.Metadata.Trigger.RunOnStartup)
        {
            Start(time.GetUtcNow().UtcDateTime, stoppingToken);
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            var now = time.GetUtcNow().UtcDateTime;
            var next = schedule.Next(now);
            try
            {
                await Task.Delay(next - now, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }

            if (!_running.IsCompleted)
            {
                Log.TimerTickSkipped(logger, function.Name);
                continue;
            }

            Start(next, stoppingToken);
        }

        await _running;
    }

    private void Start(DateTime scheduled, CancellationToken stoppingToken)
    {
        var now = time.GetUtcNow().UtcDateTime;
        TimerInfo info = new()
        {
            IsPastDue = now - scheduled > TimeSpan.FromSeconds(1),
            ScheduleStatus = new ScheduleStatus { Last = _last, Next = schedule.Next(now), LastUpdated = now },
        };
        _last = scheduled;
        _running = RunAsync(info, stoppingToken);
    }

    private async Task RunAsync(TimerInfo info, CancellationToken stoppingToken)
    {
        await Task.Yield();
        await using var scope = scopes.CreateAsyncScope();
        try
        {
            await function.InvokeAsync(new Invocation(function, scope.ServiceProvider, stoppingToken) { Trigger = info });
            Log.TimerRan(logger, function.Name);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            Log.TimerCancelled(logger, function.Name);
        }
        catch (Exception e)
        {
            Log.FunctionFailed(logger, e, function.Name);
        }
    }
}
