namespace TenantDb.Functions.Tests.Deploy;

/// <summary>
/// Reads the block YAML that <c>docker stack config</c> prints (maps, lists, plain or quoted scalars, two-space indents)
/// into dictionaries, lists and strings: enough to look into a normalised stack file without a YAML package.
/// </summary>
public static class YamlSubset
{
    public static Dictionary<string, object?> Parse(string text)
    {
        var lines = text.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Trim().Length > 0 && !l.TrimStart().StartsWith('#')).ToList();
        var i = 0;
        return Assert.IsType<Dictionary<string, object?>>(Block(lines, ref i, 0));
    }

    /// <summary>The value at a path of map keys, e.g. <c>At(stack, "services", "allocator", "environment")</c>.</summary>
    public static T At<T>(Dictionary<string, object?> root, params string[] path)
    {
        object? node = root;
        foreach (var key in path)
        {
            var map = Assert.IsType<Dictionary<string, object?>>(node);
            Assert.True(map.TryGetValue(key, out node), $"no '{key}' in the stack (path {string.Join('.', path)})");
        }

        return Assert.IsType<T>(node);
    }

    private static int Indent(string line) => line.Length - line.TrimStart(' ').Length;

    private static object Block(List<string> lines, ref int i, int indent) =>
        lines[i].TrimStart().StartsWith("- ", StringComparison.Ordinal) ? List(lines, ref i, indent) : Map(lines, ref i, indent);

    private static Dictionary<string, object?> Map(List<string> lines, ref int i, int indent)
    {
        var map = new Dictionary<string, object?>(StringComparer.Ordinal);
        while (i < lines.Count && Indent(lines[i]) == indent && !lines[i].TrimStart().StartsWith("- ", StringComparison.Ordinal))
        {
            var line = lines[i].Trim();
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            Assert.True(colon > 0, $"not a 'key: value' line: {line}");
            var key = Unquote(line[..colon]);
            var rest = line[(colon + 1)..].Trim();
            i++;
            if (rest.Length > 0)
            {
                map[key] = rest == "null" ? null : Unquote(rest);
            }
            else if (i < lines.Count && (Indent(lines[i]) > indent
                || (Indent(lines[i]) == indent && lines[i].TrimStart().StartsWith("- ", StringComparison.Ordinal))))
            {
                map[key] = Block(lines, ref i, Indent(lines[i]));
            }
            else
            {
                map[key] = null;
            }
        }

        return map;
    }

    private static List<object?> List(List<string> lines, ref int i, int indent)
    {
        var list = new List<object?>();
        while (i < lines.Count && Indent(lines[i]) == indent && lines[i].TrimStart().StartsWith("- ", StringComparison.Ordinal))
        {
            var content = lines[i].TrimStart()[2..];
            if (content.Contains(": ", StringComparison.Ordinal) || content.EndsWith(':'))
            {
                // A map in a list: its first key is on the dash's line, the others two columns in.
                lines[i] = new string(' ', indent + 2) + content;
                list.Add(Map(lines, ref i, indent + 2));
            }
            else
            {
                list.Add(Unquote(content.Trim()));
                i++;
            }
        }

        return list;
    }

    private static string Unquote(string value) =>
        value.Length >= 2 && ((value[0] == '"' && value[^1] == '"') || (value[0] == '\'' && value[^1] == '\'')) ? value[1..^1] : value;
}
