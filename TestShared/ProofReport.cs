namespace TenantDb.Tests;

/// <summary>
/// The one-line summaries of the proof suites (<c>proof load: requests=… 5xx=0 …</c>). <c>infra/test.sh</c> points
/// <see cref="Variable"/> at a file and prints it before its totals line, so CI shows the figures of every run. Several
/// tests may write the same group (<c>proof faults: injected=1 survived=1 lost=0</c>, one per fault): the script merges
/// them into one line per group (<c>infra/proof-merge.awk</c>: counts and N/M add up, true/false must all be true).
/// </summary>
public static class ProofReport
{
    public const string Variable = "TENANTDB_PROOF_REPORT";

    private static readonly Lock Gate = new();

    public static void Write(string line)
    {
        if (Environment.GetEnvironmentVariable(Variable) is not { Length: > 0 } path)
        {
            return;
        }

        lock (Gate)
        {
            File.AppendAllText(path, line + Environment.NewLine);
        }
    }
}
