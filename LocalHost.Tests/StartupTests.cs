using System.Text.Json;

namespace TenantDb.LocalHost.Tests;

[Trait("Category", Tier.Unit)]
public sealed class StartupTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("localhost-startup-").FullName;

    [Fact]
    public void Build_FunctionWithUnbindableParameter_ThrowsNamingFunction()
    {
        WriteMetadata("Broken", "SampleApp.Unservable.Run", new { name = "request", type = "httpTrigger", direction = "In", authLevel = "Anonymous", methods = new[] { "get" }, route = "broken" });

        var error = Assert.Throws<FunctionStartupException>(() => LocalFunctionsHost.Build(["--app", _directory, "--port", "0"]));

        Assert.Equal("Broken", error.FunctionName);
        Assert.Contains("'Broken'", error.Message);
        Assert.Contains("notBindable", error.Message);
    }

    [Fact]
    public void Build_FunctionWithUnsupportedTrigger_ThrowsNamingFunction()
    {
        WriteMetadata("QueueWorker", "SampleApp.Unservable.Run", new { name = "message", type = "queueTrigger", direction = "In", queueName = "work" });

        var error = Assert.Throws<FunctionStartupException>(() => LocalFunctionsHost.Build(["--app", _directory, "--port", "0"]));

        Assert.Equal("QueueWorker", error.FunctionName);
        Assert.Contains("queueTrigger", error.Message);
    }

    [Fact]
    public void Build_TimerWithUnsetScheduleSetting_ThrowsNamingFunction()
    {
        WriteMetadata("Nightly", "SampleApp.Tick.Run", new { name = "timer", type = "timerTrigger", direction = "In", schedule = "%NotConfiguredSchedule%" });

        var error = Assert.Throws<FunctionStartupException>(() => LocalFunctionsHost.Build(["--app", _directory, "--port", "0"]));

        Assert.Equal("Nightly", error.FunctionName);
        Assert.Contains("NotConfiguredSchedule", error.Message);
    }

    [Theory]
    [Trait("Issue9", "5")]
    [InlineData("evil.example/path")]
    [InlineData("https://evil.example")]
    [InlineData("user@evil.example")]
    [InlineData("evil.example?x=1")]
    public void Build_WebsiteHostNameNotAHostName_Throws(string hostName)
    {
        WriteMetadata("Nightly", "SampleApp.Tick.Run", new { name = "timer", type = "timerTrigger", direction = "In", schedule = "0 0 3 * * *" });

        var error = Assert.Throws<InvalidOperationException>(
            () => LocalFunctionsHost.Build(["--app", _directory, "--port", "0", "--WEBSITE_HOSTNAME=" + hostName]));

        Assert.Contains("WEBSITE_HOSTNAME", error.Message);
    }

    [Fact]
    [Trait("Issue9", "6")]
    public void Build_SystemKeyEqualToAFunctionKey_Throws()
    {
        WriteMetadata("Nightly", "SampleApp.Tick.Run", new { name = "timer", type = "timerTrigger", direction = "In", schedule = "0 0 3 * * *" });

        var error = Assert.Throws<InvalidOperationException>(() => LocalFunctionsHost.Build(
            ["--app", _directory, "--port", "0", "--LocalHost:MasterKey=m", "--LocalHost:FunctionKeys=a,same-key", "--LocalHost:SystemKey=same-key"]));

        Assert.Contains("SystemKey", error.Message);
        Assert.DoesNotContain("same-key", error.Message);
    }

    [Fact]
    [Trait("Issue9", "4")]
    public void Build_SystemKeyEqualToTheMasterKey_Throws()
    {
        WriteMetadata("Nightly", "SampleApp.Tick.Run", new { name = "timer", type = "timerTrigger", direction = "In", schedule = "0 0 3 * * *" });

        var error = Assert.Throws<InvalidOperationException>(() => LocalFunctionsHost.Build(
            ["--app", _directory, "--port", "0", "--LocalHost:MasterKey=same-key", "--LocalHost:FunctionKeys=a", "--LocalHost:SystemKey=same-key"]));

        Assert.Contains("SystemKey", error.Message);
        Assert.DoesNotContain("same-key", error.Message);
    }

    [Theory]
    [InlineData("--LocalHost:NamedFunctionKeys:bad name=secret-value-1")]
    [InlineData("--LocalHost:NamedFunctionKeys:_master=secret-value-1")]
    [InlineData("--LocalHost:NamedFunctionKeys:default=secret-value-1")] // FunctionKeys' first key is already "default"
    public void Build_FunctionKeyNameNotAKeyNameOrTaken_ThrowsWithoutTheValue(string namedKey)
    {
        WriteMetadata("Nightly", "SampleApp.Tick.Run", new { name = "timer", type = "timerTrigger", direction = "In", schedule = "0 0 3 * * *" });

        var error = Assert.Throws<InvalidOperationException>(() => LocalFunctionsHost.Build(
            ["--app", _directory, "--port", "0", "--LocalHost:MasterKey=m", "--LocalHost:FunctionKeys=a", namedKey]));

        Assert.Contains("NamedFunctionKeys", error.Message);
        Assert.DoesNotContain("secret-value-1", error.Message);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private void WriteMetadata(string name, string entryPoint, object trigger)
    {
        object[] functions =
        [
            new
            {
                name,
                scriptFile = Path.Combine(TestEnvironment.SampleAppDirectory, "SampleApp.dll"),
                entryPoint,
                language = "dotnet-isolated",
                bindings = new[] { trigger },
            },
        ];
        File.WriteAllText(Path.Combine(_directory, "functions.metadata"), JsonSerializer.Serialize(functions));
    }
}
