using System.Text.RegularExpressions;

namespace TenantDb.Functions.Tests.Deploy;

/// <summary>
/// The app settings of <c>infra/azure/main.bicep</c>, read from its text: there is no Bicep compiler (nor <c>az</c>) where
/// the tests run, so the file keeps its <c>appSettings</c> block in one shape, <c>{ name: '…', value: … }</c> per line,
/// and a line of any other shape in that block fails the test rather than being skipped.
/// </summary>
public static partial class BicepAppSettings
{
    public const string BicepPath = "infra/azure/main.bicep";

    /// <summary>One setting: its name, and its value as Bicep text (a quoted literal, a parameter, an expression).</summary>
    public sealed record Setting(string Name, string Value)
    {
        /// <summary>The value when it is a plain string literal (no interpolation), else null.</summary>
        public string? Literal => Value.Length >= 2 && Value[0] == '\'' && Value[^1] == '\'' && !Value.Contains("${", StringComparison.Ordinal)
            ? Value[1..^1]
            : null;
    }

    public static string Text => RepoFiles.Read(BicepPath);

    public static IReadOnlyList<Setting> Read()
    {
        var lines = Text.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        var start = lines.FindIndex(l => l.Trim() == "appSettings: [");
        Assert.True(start >= 0, $"{BicepPath} has no line 'appSettings: ['.");
        Assert.Equal(1, lines.Count(l => l.Trim() == "appSettings: ["));
        var indent = lines[start].Length - lines[start].TrimStart().Length;

        var settings = new List<Setting>();
        for (var i = start + 1; ; i++)
        {
            Assert.True(i < lines.Count, $"{BicepPath}: the appSettings block is not closed.");
            var line = lines[i].Trim();
            if (line == "]" && lines[i].Length - lines[i].TrimStart().Length == indent)
            {
                break;
            }

            if (line.Length == 0 || line.StartsWith("//", StringComparison.Ordinal))
            {
                continue;
            }

            var entry = Entry().Match(line);
            Assert.True(entry.Success, $"{BicepPath} line {i + 1} is not of the shape {{ name: '…', value: … }}: {line}");
            settings.Add(new Setting(entry.Groups["name"].Value, entry.Groups["value"].Value.Trim()));
        }

        return settings;
    }

    /// <summary>The parameters main.bicep declares: name → has a default.</summary>
    public static IReadOnlyDictionary<string, bool> Parameters() =>
        Param().Matches(Text).ToDictionary(m => m.Groups["name"].Value, m => m.Groups["default"].Success, StringComparer.Ordinal);

    [GeneratedRegex(@"^\{ name: '(?<name>[A-Za-z0-9_]+)', value: (?<value>.+) \}$")]
    private static partial Regex Entry();

    [GeneratedRegex(@"^param (?<name>[A-Za-z0-9_]+) [a-z]+(?<default> =.*)?\r?$", RegexOptions.Multiline)]
    private static partial Regex Param();
}
