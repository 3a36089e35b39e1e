namespace TenantDb.Tests;

/// <summary>
/// The one-line summaries of the proof suites (<c>proof load: requests=… 5xx=0 …</c>). <c>infra/test.sh</c> points
/// <see cref="Variable"/> at a file and prints it before its totals line, so CI shows the figures of every run.
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
