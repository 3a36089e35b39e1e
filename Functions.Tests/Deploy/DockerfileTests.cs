using System.Globalization;
using System.Text.RegularExpressions;
using TenantDb.Functions.Drivers;

namespace TenantDb.Functions.Tests.Deploy;

/// <summary>
/// <c>infra/container/Dockerfile</c> cannot be built where the tests run (no container registry answers here, so neither
/// base image can be pulled): its structure is checked instead. Two stages, the .NET 10 SDK building and the Azure
/// Functions .NET 10 isolated image running; the app published where the host looks for it; the PostgreSQL client tools
/// installed; every file it copies from the context present in the repository.
/// </summary>
[Trait("Category", Tier.Unit)]
public sealed partial class DockerfileTests
{
    private const string DockerfilePath = "infra/container/Dockerfile";
    private const string ScriptRoot = "/home/site/wwwroot";

    /// <summary>One instruction, its continuation lines joined; comments and blank lines dropped.</summary>
    private sealed record Instruction(string Keyword, string Arguments, int Stage);

    private static List<Instruction> Parse(string text)
    {
        var instructions = new List<Instruction>();
        var stage = -1;
        var pending = "";
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (pending.Length == 0 && (line.TrimStart().StartsWith('#') || line.Trim().Length == 0))
            {
                continue;
            }

            if (line.EndsWith('\\'))
            {
                pending += line[..^1] + " ";
                continue;
            }

            var whole = (pending + line).Trim();
            pending = "";
            var space = whole.IndexOf(' ', StringComparison.Ordinal);
            var keyword = whole[..space].ToUpperInvariant();
            if (keyword == "FROM")
            {
                stage++;
            }

            instructions.Add(new Instruction(keyword, Spaces().Replace(whole[(space + 1)..], " "), stage));
        }

        Assert.True(pending.Length == 0, "The Dockerfile ends in a continuation line.");
        return instructions;
    }

    private static List<Instruction> Instructions() => Parse(RepoFiles.Read(DockerfilePath));

    [Fact]
    public void TwoStages_SdkBuilds_FunctionsIsolatedImageRuns()
    {
        var froms = Instructions().Where(i => i.Keyword == "FROM").Select(i => i.Arguments).ToList();

        Assert.Equal(
            ["mcr.microsoft.com/dotnet/sdk:10.0 AS build", "mcr.microsoft.com/azure-functions/dotnet-isolated:4-dotnet-isolated10.0 AS runtime"],
            froms);
    }

    [Fact]
    public void BuildStage_PublishesTheFunctionsApp_ToTheScriptRoot_AndRuntimeCopiesIt()
    {
        var instructions = Instructions();
        var publish = Assert.Single(instructions, i => i.Keyword == "RUN" && i.Arguments.Contains("dotnet publish", StringComparison.Ordinal));
        Assert.Equal(0, publish.Stage);
        Assert.Matches($@"dotnet publish Functions/Functions\.csproj -c Release .*-o {Regex.Escape(ScriptRoot)}$", publish.Arguments);

        var copy = Assert.Single(instructions, i => i.Keyword == "COPY" && i.Arguments.StartsWith("--from=build", StringComparison.Ordinal));
        Assert.Equal(1, copy.Stage);
        Assert.Equal($"--from=build {ScriptRoot} {ScriptRoot}", copy.Arguments);
    }

    [Fact]
    public void Runtime_SetsTheScriptRootAndWorker_InstallsPostgresClient_RunsTheHostThroughTheEntryPoint()
    {
        var runtime = Instructions().Where(i => i.Stage == 1).ToList();
        var env = string.Join(' ', runtime.Where(i => i.Keyword == "ENV").Select(i => i.Arguments));
        Assert.Contains($"AzureWebJobsScriptRoot={ScriptRoot}", env, StringComparison.Ordinal);
        Assert.Contains("FUNCTIONS_WORKER_RUNTIME=dotnet-isolated", env, StringComparison.Ordinal);

        Assert.Contains(runtime, i => i.Keyword == "RUN"
            && Regex.IsMatch(i.Arguments, @"apt-get install -y --no-install-recommends (\S+ )*postgresql-client-\$\{PG_CLIENT_MAJOR\}( |$)")
            && i.Arguments.Contains("apt-get update", StringComparison.Ordinal)
            && i.Arguments.Contains("pgdg/apt.postgresql.org.sh -y", StringComparison.Ordinal));

        // pg_dump must be at least the server's major: the client's major against the default pool image's.
        var client = int.Parse(Regex.Match(Assert.Single(runtime, i => i.Keyword == "ARG").Arguments, @"^PG_CLIENT_MAJOR=(\d+)$").Groups[1].Value, CultureInfo.InvariantCulture);
        var pools = int.Parse(Regex.Match(new DockerDriverOptions().Image, @"^postgres:(\d+)").Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.True(client >= pools, $"postgresql-client-{client} cannot dump the pools' PostgreSQL {pools}.");

        Assert.Equal("""["/opt/tenantdb/secrets-env.sh"]""", Assert.Single(runtime, i => i.Keyword == "ENTRYPOINT").Arguments);
        // Setting ENTRYPOINT clears the base image's CMD: it must be named again (the base image's start script).
        Assert.Equal("""["/opt/startup/start_nonappservice.sh"]""", Assert.Single(runtime, i => i.Keyword == "CMD").Arguments);
        Assert.Contains(runtime, i => i.Keyword == "COPY" && i.Arguments == "infra/container/secrets-env.sh /opt/tenantdb/secrets-env.sh");
        Assert.Contains(runtime, i => i.Keyword == "EXPOSE" && i.Arguments == "80");
    }

    /// <summary>The build context is the repository root: every source a COPY names exists there, and the ignore file keeps it.</summary>
    [Fact]
    public void EveryCopiedSource_ExistsInTheRepository_AndIsNotIgnored()
    {
        var ignore = RepoFiles.Read(DockerfilePath + ".dockerignore").Split('\n').Select(l => l.Trim()).ToHashSet(StringComparer.Ordinal);
        var sources = Instructions()
            .Where(i => i.Keyword == "COPY" && !i.Arguments.StartsWith("--from=", StringComparison.Ordinal))
            .SelectMany(i => i.Arguments.Split(' ')[..^1])
            .ToList();

        Assert.Contains("Functions/Functions.csproj", sources);
        foreach (var source in sources)
        {
            Assert.True(File.Exists(RepoFiles.PathOf(source)) || Directory.Exists(RepoFiles.PathOf(source)), $"COPY source {source} is not in the repository.");
            var top = source.Split('/')[0] + (source.Contains('/', StringComparison.Ordinal) ? "/" : "");
            Assert.True(ignore.Contains("!" + source) || ignore.Contains("!" + top), $"COPY source {source} is excluded by the .dockerignore.");
        }
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();
}
