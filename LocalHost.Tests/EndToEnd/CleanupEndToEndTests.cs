using System.Text;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// Issue 11, fresh machine: a test that fails leaves nothing running. An allocator host whose LocalHost cannot start has
/// already started its catalog server; the failed start stops it and removes its folder, as no test can dispose it.
/// </summary>
[Trait("Category", Tier.EndToEnd)]
public sealed class CleanupEndToEndTests
{
    [Fact]
    public async Task FailedStart_StopsTheCatalogServerItStarted_AndRemovesItsFolder()
    {
        var root = Path.Combine(Path.GetTempPath(), "tenantdb-e2e", "failed-start-" + Guid.NewGuid().ToString("N")[..8]);

        // LocalHost exits at once on a port that is not a number; the catalog server runs by then.
        await Assert.ThrowsAnyAsync<Exception>(() => AllocatorHost.StartAsync(new Dictionary<string, string> { ["LocalHost__Port"] = "not-a-port" }, root));

        Assert.Empty(ProcessesMentioning(root));
        Assert.False(Directory.Exists(root), "the failed host's folder is still there");
    }

    /// <summary>Command lines (from /proc) that name <paramref name="text"/>: a postgres -D of that folder, a LocalHost there.</summary>
    private static List<string> ProcessesMentioning(string text)
    {
        var found = new List<string>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == Environment.ProcessId)
            {
                continue;
            }

            try
            {
                var cmdline = Encoding.UTF8.GetString(File.ReadAllBytes(Path.Combine(dir, "cmdline"))).Replace('\0', ' ');
                if (cmdline.Contains(text, StringComparison.Ordinal))
                {
                    found.Add($"{pid}: {cmdline}");
                }
            }
            catch (IOException)
            {
                // It exited meanwhile.
            }
            catch (UnauthorizedAccessException)
            {
                // Not ours to read.
            }
        }

        return found;
    }
}
