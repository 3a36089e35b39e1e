using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Pools;

namespace TenantDb.Functions.Stock;

/// <summary>
/// Refills the warm stock off the request path (DESIGN.md §9): an allocation that consumed stock only <see cref="Wake"/>s it
/// (a non-blocking signal, no I/O), and it also looks every <see cref="PoolsOptions.WarmStockInterval"/> for pools made or
/// emptied elsewhere (another host, a new pool). One pass at a time per host; the catalog serializes hosts per pool.
/// </summary>
public sealed partial class WarmStockReplenisher(
    WarmStockService stock,
    IOptions<PoolsOptions> poolsOptions,
    ILogger<WarmStockReplenisher> logger) : BackgroundService
{
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

    /// <summary>Asks for a pass soon; returns at once. Signals while a pass is due are merged into it.</summary>
    public void Wake() => _wake.Writer.TryWrite(true);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (poolsOptions.Value.WarmStock > 0)
                {
                    await stock.ReplenishAsync(stoppingToken);
                }
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // The catalog or a pool does not answer: the next signal or tick tries again.
                LogPassFailed(e);
            }

            try
            {
                using var tick = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                tick.CancelAfter(poolsOptions.Value.WarmStockInterval);
                await _wake.Reader.ReadAsync(tick.Token);
            }
            catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
            {
                // The interval passed without a signal.
            }
        }
    }

    [LoggerMessage(LogLevel.Warning, "A warm-stock pass failed; the next one retries")]
    private partial void LogPassFailed(Exception e);
}
