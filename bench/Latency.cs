using System.Diagnostics;

namespace TenantDb.Bench;

/// <summary>
/// One load level: how many callers at once and how many operations in all, measured in <see cref="Rounds"/> rounds that
/// alternate with the other sections' rounds (so a change in the machine's load meets every section alike).
/// </summary>
public sealed record Load(string Name, int Callers, int Operations, int Rounds = 1)
{
    /// <summary>One round's share of the operations.</summary>
    public Load Round => this with { Operations = Operations / Rounds, Rounds = 1 };
}

/// <summary>What one round measured: each successful operation's time, the failures, the round's wall time.</summary>
public sealed record Samples(List<double> Milliseconds, int Failures, TimeSpan Wall)
{
    public static Samples Combine(IEnumerable<Samples> rounds)
    {
        var all = rounds.ToList();
        return new Samples([.. all.SelectMany(r => r.Milliseconds)], all.Sum(r => r.Failures), TimeSpan.FromTicks(all.Sum(r => r.Wall.Ticks)));
    }

    public LatencyResult Result => LatencyResult.Of(Milliseconds, Failures, Wall);
}

/// <summary>What one load level measured: latency percentiles of each operation and the throughput of the whole level.</summary>
public sealed record LatencyResult(int Operations, int Failures, double P50, double P95, double P99, double Mean, double PerSecond)
{
    public static LatencyResult Of(IReadOnlyCollection<double> milliseconds, int failures, TimeSpan wall)
    {
        var sorted = milliseconds.Order().ToArray();
        return new LatencyResult(sorted.Length, failures, Percentile(sorted, 0.50), Percentile(sorted, 0.95), Percentile(sorted, 0.99),
            sorted.Length == 0 ? double.NaN : sorted.Average(), sorted.Length / wall.TotalSeconds);
    }

    /// <summary>Nearest rank: the smallest value with at least <paramref name="p"/> of the values at or below it.</summary>
    public static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
}

/// <summary>Runs a load: <see cref="Load.Callers"/> callers take the next operation number until all are done.</summary>
public static class Latency
{
    /// <param name="operation">One operation by its number; false (or an exception) counts as a failure, timed apart.</param>
    public static async Task<LatencyResult> MeasureAsync(Load load, Func<int, Task<bool>> operation) => (await SampleAsync(load, operation)).Result;

    /// <inheritdoc cref="MeasureAsync"/>
    public static async Task<Samples> SampleAsync(Load load, Func<int, Task<bool>> operation)
    {
        var times = new List<double>(load.Operations);
        var failures = 0;
        var next = -1;
        var wall = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, load.Callers).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < load.Operations)
            {
                var watch = Stopwatch.StartNew();
                bool ok;
                try
                {
                    ok = await operation(i);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    ok = false;
                    Console.Error.WriteLine($"  {load.Name} operation {i} failed: {e.GetType().Name}: {e.Message.Split('\n')[0]}");
                }

                var elapsed = watch.Elapsed.TotalMilliseconds;
                lock (times)
                {
                    if (ok)
                    {
                        times.Add(elapsed);
                    }
                    else
                    {
                        failures++;
                    }
                }
            }
        })));
        return new Samples(times, failures, wall.Elapsed);
    }
}
