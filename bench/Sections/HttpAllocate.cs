using System.Diagnostics;
using System.Globalization;

namespace TenantDb.Bench.Sections;

/// <summary>
/// Allocate over HTTP: <c>POST /api/database/allocate</c> with a function key and a JSON body to LocalHost serving the real
/// app as a child process, the run's pool server registered through the admin API as its only pool. Timed: the request until
/// its 200 (the claim that follows is not). The create path runs with <c>Pools:WarmStock</c> 0; the warm-stock path with a
/// stock of a round's size, refilled by the app's own background replenisher, which the benchmark waits for before a round.
/// </summary>
public sealed class HttpAllocate : ILoadSection, IAsyncDisposable
{
    private readonly LocalHostProcess _host;
    private readonly bool _warm;
    private readonly int _stock;
    private readonly bool _inline;

    private HttpAllocate(LocalHostProcess host, bool warm, int stock, bool inline)
    {
        _host = host;
        _warm = warm;
        _stock = stock;
        _inline = inline;
    }

    /// <summary>The LocalHost it allocates through.</summary>
    public LocalHostProcess Host => _host;

    public string Key => (_warm ? "allocate_http_warm_stock" : "allocate_http_create") + (_inline ? "_inline_password" : "");
    public string Title => (_warm ? "allocate over HTTP, warm stock" : "allocate over HTTP, create path") + (_inline ? ", inline password (no handoff)" : "");

    /// <param name="inline">
    /// <c>Allocation:InlinePassword</c>: the answer carries the password instead of a claim URL, so no credential handoff is
    /// deposited in the task hub on the request path (the platform's earlier shape; shows what the deposit costs).
    /// </param>
    public static async Task<HttpAllocate> StartAsync(Servers servers, bool warm, int stock, bool inline = false)
    {
        var name = (warm ? "http-warm" : "http-create") + (inline ? "-inline" : "");
        var host = await LocalHostProcess.StartAsync(servers, name, new Dictionary<string, string>
        {
            ["Allocation__DatabasePrefix"] = (warm ? "bhw" : "bhc") + (inline ? "i_" : "_"),
            ["Pools__WarmStock"] = (warm ? stock : 0).ToString(CultureInfo.InvariantCulture),
            ["Allocation__InlinePassword"] = inline ? "true" : "false",
        });
        try
        {
            await host.RegisterAsync(servers.Pool, name, 10_000);
            var section = new HttpAllocate(host, warm, stock, inline);
            await section.AllocateAsync(); // the first request pays for the app's connection pools and JIT
            return section;
        }
        catch
        {
            await host.DisposeAsync();
            throw;
        }
    }

    public async Task PrepareAsync(Load load)
    {
        if (!_warm)
        {
            return;
        }

        // The app's replenisher refills by itself; a round starts once the stock holds a whole round.
        var need = Math.Min(load.Operations, _stock);
        var waited = Stopwatch.StartNew();
        while (true)
        {
            var pools = await _host.PoolsAsync();
            var ready = pools.Sum(p => p.TryGetProperty("warm_stock", out var s) ? s.GetInt32() : 0);
            if (ready >= need)
            {
                return;
            }

            if (waited.Elapsed > TimeSpan.FromMinutes(3))
            {
                throw new TimeoutException($"the warm stock held {ready} of {need} after 3 minutes");
            }

            await Task.Delay(200);
        }
    }

    public Task<Samples> RunAsync(Load load) => Latency.SampleAsync(load, _ => AllocateAsync());

    public ValueTask DisposeAsync() => _host.DisposeAsync();

    private async Task<bool> AllocateAsync()
    {
        var (status, body) = await _host.AllocateAsync(Guid.NewGuid());
        if (status != 200 && Interlocked.Increment(ref _reported) <= 5)
        {
            // A problem's type and title only: an answer that is not 200 carries no password.
            var problem = body.ValueKind == System.Text.Json.JsonValueKind.Object
                ? $"{(body.TryGetProperty("type", out var t) ? t : default)} {(body.TryGetProperty("title", out var title) ? title : default)}" : "";
            Console.Error.WriteLine($"  {Key}: allocate answered {status} {problem}");
        }

        return status == 200;
    }

    private int _reported;
}
