using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Administration;

/// <summary>One event of the status history as the routes answer it.</summary>
public sealed record AuditEventView(long Id, DateTimeOffset At, string Event, string? FromStatus, string? ToStatus, string? Reason, string Actor,
    long? PoolId, Guid? InstanceId)
{
    public static AuditEventView From(PoolEvent e) => new(e.Id, e.At, e.Event, e.FromStatus, e.ToStatus, e.Reason, e.Actor, e.DbServerId, e.InstanceId);
}

/// <summary>A page of events, newest first; <see cref="NextBefore"/> (absent on the last page) asks for the next one.</summary>
public sealed record AuditEventPage(IReadOnlyList<AuditEventView> Events, int Limit, long? NextBefore);

/// <summary>
/// The status history of a pool or an allocation (who changed what, when), paged newest first by event id
/// (<c>limit</c>, <c>before</c>), and its retention purge, run by the daily cleanup.
/// </summary>
public sealed partial class AuditTrailService(
    AuditTrailStore store, PoolStore pools, IOptions<CleanupOptions> options, TimeProvider time, ILogger<AuditTrailService> logger)
{
    public const int DefaultLimit = 50;
    public const int MaxLimit = 200;

    /// <summary>Events removed per statement of the purge; it runs until a statement removes fewer.</summary>
    public const int PurgeBatch = 5_000;

    public async Task<AdminOutcome<AuditEventPage>> PoolEventsAsync(long poolId, string? limit, string? before, CancellationToken ct)
    {
        if (!TryParsePage(limit, before, out var size, out var cursor, out var errors))
        {
            return new AdminOutcome<AuditEventPage>.Invalid(errors);
        }

        if (await pools.GetAsync(poolId, ct) is null)
        {
            return AdminOutcome<AuditEventPage>.PoolNotFound(poolId);
        }

        return new AdminOutcome<AuditEventPage>.Done(Page(await store.PoolPageAsync(poolId, cursor, size + 1, ct), size));
    }

    public async Task<AdminOutcome<AuditEventPage>> AllocationEventsAsync(Guid instanceId, string? limit, string? before, CancellationToken ct)
    {
        if (!TryParsePage(limit, before, out var size, out var cursor, out var errors))
        {
            return new AdminOutcome<AuditEventPage>.Invalid(errors);
        }

        if (!await store.InstanceKnownAsync(instanceId, ct))
        {
            return new AdminOutcome<AuditEventPage>.NotFound("allocation-not-found", "This instance has no database.");
        }

        return new AdminOutcome<AuditEventPage>.Done(Page(await store.InstancePageAsync(instanceId, cursor, size + 1, ct), size));
    }

    /// <summary>Removes the events older than <see cref="CleanupOptions.EventRetention"/>; returns how many.</summary>
    public async Task<int> PurgeExpiredAsync(CancellationToken ct)
    {
        var cutoff = time.GetUtcNow() - options.Value.EventRetention;
        int removed = 0, step;
        do
        {
            step = await store.PurgeAsync(cutoff, PurgeBatch, ct);
            removed += step;
        }
        while (step == PurgeBatch);

        LogPurged(removed, cutoff);
        return removed;
    }

    /// <summary><paramref name="limit"/>: 1..<see cref="MaxLimit"/>, default <see cref="DefaultLimit"/>; <paramref name="before"/>: a positive event id.</summary>
    public static bool TryParsePage(string? limit, string? before, out int size, out long? cursor, out Dictionary<string, string[]> errors)
    {
        errors = [];
        size = DefaultLimit;
        cursor = null;
        if (!string.IsNullOrEmpty(limit))
        {
            if (int.TryParse(limit, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= MaxLimit)
            {
                size = n;
            }
            else
            {
                errors["limit"] = [$"limit must be a whole number between 1 and {MaxLimit}."];
            }
        }

        if (!string.IsNullOrEmpty(before))
        {
            if (long.TryParse(before, NumberStyles.None, CultureInfo.InvariantCulture, out var id) && id > 0)
            {
                cursor = id;
            }
            else
            {
                errors["before"] = ["before must be a positive event id (next_before of the previous page)."];
            }
        }

        return errors.Count == 0;
    }

    private static AuditEventPage Page(IReadOnlyList<PoolEvent> found, int size)
    {
        var events = found.Take(size).Select(AuditEventView.From).ToList();
        return new AuditEventPage(events, size, found.Count > size ? events[^1].Id : null);
    }

    [LoggerMessage(LogLevel.Information, "Purged {Count} audit events older than {Cutoff}")]
    private partial void LogPurged(int count, DateTimeOffset cutoff);
}
