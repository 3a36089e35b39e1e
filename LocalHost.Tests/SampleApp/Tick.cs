using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Logging;

namespace SampleApp;

/// <summary>A timer whose schedule comes from the app setting TickSchedule.</summary>
public sealed class Tick(TickCounter counter, ILogger<Tick> logger)
{
    [Function(nameof(Tick))]
    public Task Run([TimerTrigger("%TickSchedule%")] TimerInfo timer, CancellationToken cancellationToken)
    {
        counter.Increment();
        logger.LogInformation("Tick {Count}, next {Next}", counter.Count, timer.ScheduleStatus?.Next);
        return Task.CompletedTask;
    }
}
