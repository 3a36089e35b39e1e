using System.Diagnostics;

namespace TenantDb.LocalHost.Tests;

/// <summary>
/// infra/proof-merge.awk and infra/proof-check.awk, which turn the proof suites' lines into CI's summary and fail the run on
/// a figure that says something was lost or leaked (even one no test asserted, like every host's secrets_in_logs).
/// </summary>
[Trait("Category", Tier.Unit)]
public sealed class ProofReportScriptTests
{
    private static readonly string Infra = Path.Combine(TestEnvironment.RepositoryRoot, "infra");

    private static async Task<string> AwkAsync(string script, string input)
    {
        var start = new ProcessStartInfo("awk", ["-f", Path.Combine(Infra, script)])
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        await process.StandardInput.WriteAsync(input);
        process.StandardInput.Close();
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.Equal(0, process.ExitCode);
        return output;
    }

    [Fact]
    public async Task Merge_LinesOfAGroup_OneLineWithCountsAndFractionsAddedAndFlagsAnded()
    {
        var merged = await AwkAsync("proof-merge.awk", """
            proof faults: injected=1 survived=1 lost=0
            proof load: requests=750 5xx=0 counters_ok=true allocate_seconds=15.2
            proof security: isolation_checks=12/12
            proof faults: injected=1 survived=0 lost=2
            proof security: secrets_in_logs=0 secrets_in_storage=0
            proof security: secrets_in_logs=1
            proof load: counters_ok=false
            not a proof line
            """);

        Assert.Equal("""
            proof faults: injected=2 survived=1 lost=2
            proof load: requests=750 5xx=0 counters_ok=false allocate_seconds=15.2
            proof security: isolation_checks=12/12 secrets_in_logs=1 secrets_in_storage=0

            """.ReplaceLineEndings("\n"), merged);
    }

    [Fact]
    public async Task Check_EveryFigureOfLossOrLeak_IsReported_AndAHealthyReportIsSilent()
    {
        var broken = await AwkAsync("proof-check.awk", """
            proof faults: injected=9 survived=8 lost=1
            proof hostile: inputs=2346 5xx=0 ddl=0 leaked_keys=0 non_problem_errors=0
            proof security: isolation_checks=11/12 secrets_in_logs=3 secrets_in_storage=0
            proof load: requests=750 5xx=1 counters_ok=false
            """);
        var healthy = await AwkAsync("proof-check.awk", """
            proof faults: injected=9 survived=9 lost=0
            proof security: isolation_checks=12/12 secrets_in_logs=0 secrets_in_storage=0
            proof load: requests=750 5xx=0 duplicates=0 lost=0 counters_ok=true
            proof cleanup: leftover_processes=0 leftover_docker=0
            """);

        Assert.Equal(
            ["faults: lost=1", "faults: survived=8 of injected=9", "security: isolation_checks=11/12", "security: secrets_in_logs=3",
             "load: 5xx=1", "load: counters_ok=false"],
            broken.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l["proof ".Length..].Split(" (")[0]));
        Assert.Equal("", healthy);
    }
}
