using System.ComponentModel.DataAnnotations;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace TenantDb.Functions.Administration;

/// <summary>The app's own health check (section <c>Healthz</c>), behind the anonymous <c>GET /api/healthz</c>.</summary>
public sealed class HealthzOptions
{
    public const string Section = "Healthz";

    /// <summary>How long each part (the catalog, the task hub) may take to answer before it counts as failed.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:01:00")]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(3);
}

/// <summary>What <c>GET /api/healthz</c> found: one word per part, <c>ok</c> or <c>unavailable</c>; nothing else.</summary>
public sealed record AppHealthReport(string Catalog, string TaskHub)
{
    public const string Ok = "ok";
    public const string Unavailable = "unavailable";

    public bool Healthy => Catalog == Ok && TaskHub == Ok;

    /// <summary>The parts that failed, by their JSON names.</summary>
    public IEnumerable<string> Failed =>
        new[] { ("catalog", Catalog), ("task_hub", TaskHub) }.Where(p => p.Item2 != Ok).Select(p => p.Item1);
}

/// <summary>
/// Whether the app can take work: the catalog answers a real <c>SELECT 1</c> and the task hub's storage answers a
/// look-up through the Durable client (the same path allocations take, under LocalHost and under the Functions host),
/// each bounded by <see cref="HealthzOptions.Timeout"/>. Faults are logged here; the report carries no text of them.
/// </summary>
public sealed partial class AppHealth(NpgsqlDataSource catalog, IOptions<HealthzOptions> options, TimeProvider time, ILogger<AppHealth> logger)
{
    /// <summary>An orchestration id no run ever has: looking it up reads the task hub's instance store and finds nothing.</summary>
    public const string ProbeInstanceId = "healthz-probe";

    public async Task<AppHealthReport> CheckAsync(DurableTaskClient client, CancellationToken ct)
    {
        var catalogCheck = BoundedAsync("catalog", async t =>
        {
            await using var command = catalog.CreateCommand("SELECT 1");
            command.CommandTimeout = Math.Max(1, (int)Math.Ceiling(options.Value.Timeout.TotalSeconds));
            await command.ExecuteScalarAsync(t);
        }, ct);
        var taskHubCheck = BoundedAsync("task_hub", t => client.GetInstanceAsync(ProbeInstanceId, getInputsAndOutputs: false, t), ct);
        return new AppHealthReport(await catalogCheck, await taskHubCheck);
    }

    private async Task<string> BoundedAsync(string part, Func<CancellationToken, Task> call, CancellationToken ct)
    {
        var timeout = options.Value.Timeout;
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bound.CancelAfter(timeout);
        try
        {
            // WaitAsync too: not every client honours its token while its store stalls.
            await call(bound.Token).WaitAsync(timeout, time, ct);
            return AppHealthReport.Ok;
        }
        catch (Exception e) when (!ct.IsCancellationRequested && e is not OutOfMemoryException)
        {
            LogPartFailed(e, part);
            return AppHealthReport.Unavailable;
        }
    }

    [LoggerMessage(LogLevel.Warning, "Health check: {Part} did not answer")]
    private partial void LogPartFailed(Exception e, string part);
}
