using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace TenantDb.Bench;

/// <summary>A goal of issue 13 item 3 next to a figure: its text and whether the figure meets it (null: not judged).</summary>
public sealed record Goal(string Text, bool? Met);

/// <summary>One row of the table: a figure of one section at one load (or one scenario).</summary>
public sealed record Row(string Section, string Key, string Load, LatencyResult? Result, double? P50Ratio, double? RateRatio, Goal? Goal, string? Note);

/// <summary>
/// The run's results: rows for the markdown table on stdout, and the same figures (and each section's details) as JSON for
/// <c>bench/results/latest.json</c>.
/// </summary>
public sealed class Report
{
    private readonly List<Row> _rows = [];
    private readonly JsonObject _sections = [];
    private readonly List<string> _notes = [];

    public IReadOnlyList<Row> Rows => _rows;

    /// <summary>A latency row; the ratios are to <paramref name="raw"/>, the raw floor at the same load in this run.</summary>
    public void Add(string section, string key, Load load, LatencyResult? result, LatencyResult? raw, Goal? goal = null, string? note = null) =>
        Add(section, key, load.Name, result, result is null || raw is null ? null : result.P50 / raw.P50,
            result is null || raw is null ? null : result.PerSecond / raw.PerSecond, goal, note);

    public void Add(string section, string key, string load, LatencyResult? result, double? p50Ratio, double? rateRatio, Goal? goal = null, string? note = null)
    {
        _rows.Add(new Row(section, key, load, result, p50Ratio, rateRatio, goal, note));
        var entry = new JsonObject
        {
            ["section"] = section,
            ["available"] = result is not null,
        };
        if (result is not null)
        {
            entry["operations"] = result.Operations;
            entry["failures"] = result.Failures;
            entry["p50_ms"] = Round(result.P50);
            entry["p95_ms"] = Round(result.P95);
            entry["p99_ms"] = Round(result.P99);
            entry["mean_ms"] = Round(result.Mean);
            entry["per_second"] = Round(result.PerSecond);
        }

        entry["p50_ratio_to_raw"] = p50Ratio is { } p ? Round(p, 3) : null;
        entry["per_second_ratio_to_raw"] = rateRatio is { } r ? Round(r, 3) : null;
        if (goal is not null)
        {
            entry["goal"] = goal.Text;
            entry["met"] = goal.Met;
        }

        if (note is not null)
        {
            entry["note"] = note;
        }

        Section(key)[load] = entry;
    }

    /// <summary>A section that failed: a row saying so, and its error in the JSON.</summary>
    public void Failed(string section, string error)
    {
        _rows.Add(new Row(section, section, "failed", null, null, null, null, $"failed: {error}"));
        Section(section)["failed"] = error;
    }

    /// <summary>A detail of a section kept in the JSON only (counts, plans, settings).</summary>
    public void Detail(string key, string name, JsonNode? value) => Section(key)[name] = value;

    /// <summary>A line under the table.</summary>
    public void Note(string text) => _notes.Add(text);

    public string Markdown()
    {
        var text = new StringBuilder();
        text.AppendLine("| section | load | p50 ms | p95 ms | p99 ms | ops/s | p50 × raw | ops/s × raw | goal | met |");
        text.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---|---|");
        foreach (var row in _rows)
        {
            var r = row.Result;
            text.AppendLine(CultureInfo.InvariantCulture, $"| {row.Section} | {row.Load} | {Ms(r?.P50)} | {Ms(r?.P95)} | {Ms(r?.P99)} | {Rate(r)} | {Ratio(row.P50Ratio)} | {Ratio(row.RateRatio)} | {row.Goal?.Text ?? ""} | {Met(row)} |");
        }

        var notes = _rows.Where(r => r.Note is not null).Select(r => $"{r.Section} ({r.Load}): {r.Note}").Concat(_notes).ToList();
        if (notes.Count > 0)
        {
            text.AppendLine();
            foreach (var note in notes)
            {
                text.AppendLine(CultureInfo.InvariantCulture, $"- {note}");
            }
        }

        return text.ToString();
    }

    public string Json(JsonObject run)
    {
        var goals = new JsonArray(_rows.Where(r => r.Goal is not null).Select(r => (JsonNode)new JsonObject
        {
            ["section"] = r.Key,
            ["load"] = r.Load,
            ["goal"] = r.Goal!.Text,
            ["met"] = r.Goal.Met,
        }).ToArray());
        var document = new JsonObject
        {
            ["run"] = run,
            ["sections"] = _sections.DeepClone(),
            ["goals"] = goals,
            ["notes"] = new JsonArray(_notes.Select(n => (JsonNode)JsonValue.Create(n)).ToArray()),
            ["table"] = Markdown(),
        };
        return document.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    public static double Round(double value, int digits = 2) => double.IsFinite(value) ? Math.Round(value, digits) : -1;

    private JsonObject Section(string key)
    {
        if (_sections[key] is not JsonObject section)
        {
            section = [];
            _sections[key] = section;
        }

        return section;
    }

    private static string Ms(double? value) => value is { } v && double.IsFinite(v)
        ? v.ToString(v < 10 ? "0.00" : "0.0", CultureInfo.InvariantCulture) : "—";

    private static string Rate(LatencyResult? r) => r is null ? "—" : r.PerSecond.ToString("0.0", CultureInfo.InvariantCulture);

    private static string Ratio(double? value) => value is { } v && double.IsFinite(v) ? "×" + v.ToString("0.00", CultureInfo.InvariantCulture) : "—";

    private static string Met(Row row) => row.Result is null && row.Goal is not null
        ? "not available"
        : row.Goal?.Met switch { true => "met", false => "**missed**", null => "" };
}
