using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;

namespace SampleApp;

/// <summary>A timer due once a year: it runs in a test only when started by <c>POST /admin/functions/Yearly</c>.</summary>
public sealed class Yearly(YearlyCounter counter)
{
    [Function(nameof(Yearly))]
    public Task Run([TimerTrigger("0 0 0 1 1 *")] TimerInfo timer)
    {
        counter.Increment();
        return Task.CompletedTask;
    }

    [Function("YearlyRuns")]
    public IActionResult Runs([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "yearly")] HttpRequest request) =>
        new OkObjectResult(new { count = counter.Count });
}

/// <summary>Counts the runs of <see cref="Yearly"/>.</summary>
public sealed class YearlyCounter
{
    private int _count;

    public int Count => Volatile.Read(ref _count);

    public void Increment() => Interlocked.Increment(ref _count);
}
