using System.Diagnostics;

namespace TenantDb.Functions.Tests.Deploy;

/// <summary>
/// The image's entry point (<c>infra/container/secrets-env.sh</c>), run by <c>sh</c> as the container runs it: a Docker
/// secret named by <c>NAME_FILE</c> becomes the app setting <c>NAME</c>; other <c>*_FILE</c> variables are left alone.
/// </summary>
[Trait("Category", Tier.EndToEnd)]
public sealed class ContainerEntrypointTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("tenantdb-entrypoint-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string Secret(string name, string content)
    {
        var path = Path.Combine(_folder, name);
        File.WriteAllText(path, content);
        return path;
    }

    private static (int ExitCode, string Output, string Error) Run(Dictionary<string, string> environment, string command)
    {
        var start = new ProcessStartInfo("sh") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(RepoFiles.PathOf("infra/container/secrets-env.sh"));
        start.ArgumentList.Add("sh");
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(command);
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(30_000), "secrets-env.sh did not finish within 30 s.");
        return (process.ExitCode, output.Result, error.Result);
    }

    [Fact]
    public void AppSettingFiles_BecomeTheirSettings_OtherFileVariablesStay()
    {
        var (code, output, _) = Run(new Dictionary<string, string>
        {
            ["AzureWebJobsStorage_FILE"] = Secret("storage", "UseDevelopmentStorage=true\n"),
            ["ConnectionStrings__Catalog_FILE"] = Secret("catalog", "Host=catalog;Database=tenantdb_catalog\n"),
            ["Secrets__Key_FILE"] = Secret("key", "two\nlines"),
            ["SOME_CERT_FILE"] = Secret("cert", "not a setting"),
        }, """printf '[%s]' "$AzureWebJobsStorage" "$ConnectionStrings__Catalog" "$Secrets__Key" "${SOME_CERT:-unset}" "${AzureWebJobsStorage_FILE:-gone}" "${SOME_CERT_FILE:+kept}" """);

        Assert.Equal(0, code);
        Assert.Equal("[UseDevelopmentStorage=true][Host=catalog;Database=tenantdb_catalog][two\nlines][unset][gone][kept]", output);
    }

    [Fact]
    public void ASettingAlreadySet_Wins_AndAnUnreadableFile_StopsTheStart()
    {
        var kept = Run(new Dictionary<string, string>
        {
            ["Secrets__Key"] = "from-env",
            ["Secrets__Key_FILE"] = Secret("key", "from-file"),
        }, """printf '%s' "$Secrets__Key" """);
        Assert.Equal((0, "from-env"), (kept.ExitCode, kept.Output));

        var missing = Run(new Dictionary<string, string> { ["Secrets__Key_FILE"] = Path.Combine(_folder, "absent") }, "echo started");
        Assert.Equal(64, missing.ExitCode);
        Assert.DoesNotContain("started", missing.Output, StringComparison.Ordinal);
        Assert.Contains("Secrets__Key_FILE", missing.Error, StringComparison.Ordinal);
    }
}
