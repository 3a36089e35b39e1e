using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Npgsql;
using Xunit.Abstractions;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// Issue 11, hostile input: a generated corpus of malformed, oversized, injected and mis-keyed requests on every route of
/// the real app (LocalHost as a child process, one active process-driver pool, one real tenant), sent as raw HTTP/1.1 so
/// that nothing (no client library) cleans the input up. Every answer must be below 500, every error a problem+json 4xx
/// without a stack trace, no key of the host may come back, and the pool servers (with <c>log_statement = 'all'</c>) must
/// run no DDL while the corpus is sent; the catalog must gain no tenant row.
/// </summary>
[Trait("Category", Tier.EndToEnd)]
public sealed partial class HostileInputProofTests(ITestOutputHelper output)
{
    private const int Concurrency = 8;
    private const string LogStatementChanged = "parameter \"log_statement\" changed to \"all\"";
    private static readonly string[] Keys = [AllocatorHost.MasterKey, AllocatorHost.FunctionKey, AllocatorHost.SystemKey];

    [Fact]
    public async Task HostileCorpus_OnEveryRoute_No5xxOnlyProblemJsonNoStackNoKeyNoDdl()
    {
        await using var host = await AllocatorHost.StartAsync();

        // One active pool and one real, ready tenant (so the routes also see a real instance id and a real pool id).
        var (provisioned, provision) = await host.SendAsync(HttpMethod.Post, "/api/database/admin/provision-pool", AllocatorHost.MasterKey);
        Assert.True(provisioned is 200 or 201 or 202, $"provision-pool answered {provisioned}");
        var orchestrationId = provision.GetProperty("orchestration").GetProperty("id").GetString()!;
        // Controls for the checks below: the keys are the ones this host uses (an operator's provision answer carries the
        // system key in its status URLs, by design), and the stack-trace pattern matches a real .NET stack trace.
        Assert.Contains(AllocatorHost.SystemKey, provision.ToString(), StringComparison.Ordinal);
        Assert.Matches(StackTrace(), "System.ArgumentException: bad (Parameter 'hostName')    at System.Net.Dns.GetHostAddressesAsync(String hostNameOrAddress)");
        Assert.Matches(StackTrace(), "{\"detail\":\"NpgsqlException\"}");
        await WaitUntilAsync(async () => await ScalarAsync(host, "SELECT count(*) FROM db_servers WHERE status = 'active'") >= 1, host, "pool active");
        var poolId = await ScalarAsync(host, "SELECT min(id) FROM db_servers WHERE status = 'active'");

        var tenant = Guid.NewGuid();
        var (allocated, allocation) = await host.SendAsync(HttpMethod.Post, "/api/database/allocate",
            body: new { instance_id = tenant.ToString(), customer_id = Guid.NewGuid().ToString(), plan_tier = "standard" });
        Assert.True(allocated is 200 or 202, $"allocate answered {allocated}: {allocation}");
        await WaitUntilAsync(async () =>
        {
            var (status, body) = await host.SendAsync(HttpMethod.Get, $"/api/database/allocations/{tenant}");
            return status == 200 && body.GetProperty("database_status").GetString() == "ready";
        }, host, "tenant ready");
        var (claimed, credentials) = await host.SendAsync(HttpMethod.Post, $"/api/database/credentials/{tenant}/claim");
        Assert.Equal(200, claimed);

        // log_statement = 'all' on every pool server and on the catalog, then proof that it logs: a control statement and
        // a control DDL of the tenant in its own database appear in the pool's log and the DDL counter sees the DDL.
        var poolDirs = Directory.GetDirectories(host.PoolsRoot).Where(LocalPostgresIsInitialized).ToList();
        Assert.NotEmpty(poolDirs);
        foreach (var dir in poolDirs)
        {
            await File.AppendAllLinesAsync(Path.Combine(dir, "postgresql.conf"), ["", "# hostile input proof", "log_statement = 'all'"]);
            await SignalReloadAsync(dir);
        }

        var catalogDir = Path.Combine(Path.GetDirectoryName(host.PoolsRoot)!, "catalog");
        await using (var conn = new NpgsqlConnection(host.CatalogConnectionString))
        {
            await conn.OpenAsync();
            await using var alter = new NpgsqlCommand("ALTER SYSTEM SET log_statement = 'all'", conn);
            await alter.ExecuteNonQueryAsync();
            await using var reload = new NpgsqlCommand("SELECT pg_reload_conf()", conn);
            await reload.ExecuteScalarAsync();
        }

        var logs = poolDirs.Append(catalogDir).Select(d => Path.Combine(d, "server.log")).ToList();
        foreach (var log in logs)
        {
            await WaitUntilAsync(() => Task.FromResult(ReadShared(log).Contains(LogStatementChanged, StringComparison.Ordinal)), host, $"reload of {log}");
        }

        var marker = "hostile_control_" + Guid.NewGuid().ToString("N")[..12];
        var controlOffsets = logs.ToDictionary(l => l, l => new FileInfo(l).Length);
        await RunAsTenantAsync(credentials, $"SELECT '{marker}'; CREATE TABLE {marker} (x int)");
        string? controlLog = null;
        await WaitUntilAsync(() =>
        {
            controlLog = logs.FirstOrDefault(l => ReadShared(l, controlOffsets[l]).Contains(marker + "'", StringComparison.Ordinal));
            return Task.FromResult(controlLog is not null);
        }, host, "control statement in a pool log");
        await WaitUntilAsync(() => Task.FromResult(Ddl(ReadShared(controlLog!, controlOffsets[controlLog!])).Any(s => s.Contains(marker, StringComparison.Ordinal))),
            host, "control DDL counted");

        // The corpus window.
        var tenantsBefore = await ScalarAsync(host, "SELECT count(*) FROM tenant_databases");
        var offsets = logs.ToDictionary(l => l, l => new FileInfo(l).Length);
        var corpus = HostileCorpus.Build(host.Port, tenant, poolId, orchestrationId);
        var results = new ConcurrentBag<(Probe Probe, RawResponse? Response, string? Failure)>();
        var clock = Stopwatch.StartNew();
        await Parallel.ForEachAsync(corpus, new ParallelOptions { MaxDegreeOfParallelism = Concurrency }, async (probe, ct) =>
        {
            try
            {
                results.Add((probe, await RawHttp.SendAsync(host.Port, probe, ct), null));
            }
            catch (Exception e) when (e is IOException or SocketException or TimeoutException or OperationCanceledException or FormatException)
            {
                results.Add((probe, null, e.GetType().Name + ": " + e.Message));
            }
        });
        var corpusSeconds = clock.Elapsed.TotalSeconds;

        // Let the servers finish logging what the window caused, then read only what was written during it.
        await Task.Delay(TimeSpan.FromSeconds(2));
        var ddl = logs.SelectMany(l => Ddl(ReadShared(l, offsets[l])).Select(s => $"{Path.GetFileName(Path.GetDirectoryName(l))}: {s}")).ToList();
        var tenantsAfter = await ScalarAsync(host, "SELECT count(*) FROM tenant_databases");

        var noAnswer = results.Where(r => r.Response is null).Select(r => $"{r.Probe}: {r.Failure}").ToList();
        var answered = results.Where(r => r.Response is not null).Select(r => (r.Probe, Response: r.Response!)).ToList();
        var serverErrors = answered.Where(r => r.Response.Status >= 500).Select(Describe).ToList();
        var leaked = answered.Where(r => Keys.Any(k => r.Response.Raw.Contains(k, StringComparison.Ordinal))).Select(Describe).ToList();
        var errors = answered.Where(r => r.Response.Status >= 400).ToList();
        // A request Kestrel refuses while parsing gets Kestrel's bare 4xx (no app code ran, nothing to shape); any other
        // error must be problem+json. A malformed request that got past Kestrel is held to the same rule.
        var notProblem = errors.Where(r => !IsProblemJson(r.Probe, r.Response)
            && !(r.Probe.RefusedByServer && r.Response.Status is >= 400 and < 500 && r.Response.Body.Length == 0)).Select(Describe).ToList();
        var stackTraces = answered.Where(r => StackTrace().IsMatch(r.Response.Body)).Select(Describe).ToList();
        var hostReflected = answered.Where(r => r.Response.Raw.Contains("evil.example", StringComparison.OrdinalIgnoreCase)).Select(Describe).ToList();
        var unexpected = answered.Where(r => r.Response.Status is < 200 or (>= 300 and < 400)).Select(Describe).ToList();
        var protocolRefused = answered.Count(r => r.Probe.RefusedByServer && !IsProblemJson(r.Probe, r.Response));

        var summary = $"proof hostile: inputs={results.Count} 5xx={serverErrors.Count} ddl={ddl.Count} leaked_keys={leaked.Count} " +
            $"non_problem_errors={notProblem.Count}";
        var detail = $"routes={corpus.Select(p => p.Route).Distinct().Count()} errors_4xx={errors.Count(r => r.Response.Status < 500)} " +
            $"ok_2xx={answered.Count(r => r.Response.Status is >= 200 and < 300)} protocol_refused={protocolRefused} stack_traces={stackTraces.Count} " +
            $"host_reflected={hostReflected.Count} no_answer={noAnswer.Count} new_tenants={tenantsAfter - tenantsBefore} corpus_seconds={corpusSeconds.ToString("0.0", CultureInfo.InvariantCulture)}";
        output.WriteLine(summary);
        output.WriteLine(detail);
        foreach (var group in answered.Where(r => r.Probe.RefusedByServer && !IsProblemJson(r.Probe, r.Response))
            .GroupBy(r => $"{r.Probe.Kind.Split(':')[0]} -> {r.Response.Status}").OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            output.WriteLine($"refused by Kestrel: {group.Count(),3} × {group.Key}");
        }

        // What went wrong, grouped (route/kind, status, content type), then the first of each.
        var wrong = answered.Where(r => r.Response.Status >= 500 || (r.Response.Status >= 400 && !IsProblemJson(r.Probe, r.Response)
            && !(r.Probe.RefusedByServer && r.Response.Body.Length == 0))).ToList();
        foreach (var group in wrong.GroupBy(r => $"{r.Probe.Route}/{r.Probe.Kind.Split(':')[0]} -> {r.Response.Status} {r.Response.ContentType ?? "(none)"}").OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            output.WriteLine($"{group.Count(),4} × {group.Key}");
        }

        foreach (var line in serverErrors.Concat(leaked).Concat(notProblem.Take(10)).Concat(stackTraces).Concat(hostReflected).Concat(unexpected).Concat(noAnswer).Concat(ddl).Take(60))
        {
            output.WriteLine(line);
        }

        // Where the host logged a failure of a 5xx answer (its invocation id is the trace_id), for whoever fixes it.
        foreach (var traceId in answered.Where(r => r.Response.Status >= 500).Select(r => TraceId().Match(r.Response.Body)).Where(m => m.Success).Select(m => m.Groups[1].Value))
        {
            var lines = File.ReadLines(host.LogFile).SkipWhile(l => !l.Contains(traceId, StringComparison.Ordinal)).Take(3);
            output.WriteLine(string.Join('\n', lines.Select(l => Truncate(l, 3000))));
        }

        Assert.True(results.Count >= 300, $"only {results.Count} inputs");
        Assert.Empty(noAnswer);
        Assert.Empty(serverErrors);
        Assert.Empty(leaked);
        Assert.Empty(notProblem);
        Assert.Empty(stackTraces);
        Assert.Empty(hostReflected);
        Assert.Empty(unexpected);
        Assert.Empty(ddl);
        Assert.Equal(tenantsBefore, tenantsAfter);
        ProofReport.Write(summary);
    }

    private static string Describe((Probe Probe, RawResponse Response) r) =>
        $"{r.Probe} -> {r.Response.Status} {r.Response.ContentType} {Truncate(r.Response.Body, 300)}";

    private static string Truncate(string text, int length) => text.Length <= length ? text : text[..length] + "…";

    private static bool IsProblemJson(Probe probe, RawResponse response)
    {
        if (response.Status is < 400 or >= 500 || !string.Equals(response.ContentType, "application/problem+json", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        if (probe.Method == "HEAD")
        {
            return true; // a HEAD answer has headers only
        }

        try
        {
            using var doc = JsonDocument.Parse(response.Body);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("status", out _) && doc.RootElement.TryGetProperty("title", out _);
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>A .NET stack frame ("   at Namespace.Type.Method(") or an exception's type name.</summary>
    [GeneratedRegex(@"(\s{2,}at\s+[\w.`<>]+\.[\w<>`]+\()|\b\w*Exception\b|\\n\s+at\s")]
    private static partial Regex StackTrace();

    [GeneratedRegex("\"trace_id\":\"([^\"]+)\"")]
    private static partial Regex TraceId();

    /// <summary>One logged statement per record: <c>LOG:  statement: …</c> or <c>LOG:  execute &lt;name&gt;: …</c>, continuation lines (tab) joined.</summary>
    [GeneratedRegex(@"LOG:\s+(?:statement|execute [^:]*):\s*(?<sql>.*)$")]
    private static partial Regex LoggedStatement();

    [GeneratedRegex(@"^\s*(?:CREATE|DROP|ALTER|GRANT|REVOKE|REASSIGN|TRUNCATE|COMMENT|SECURITY\s+LABEL)\b", RegexOptions.IgnoreCase)]
    private static partial Regex DdlStart();

    /// <summary>The DDL statements among the statements logged in <paramref name="log"/> (each statement of a multi-statement string counted).</summary>
    private static List<string> Ddl(string log)
    {
        var statements = new List<StringBuilder>();
        StringBuilder? current = null;
        foreach (var line in log.Split('\n'))
        {
            if (LoggedStatement().Match(line) is { Success: true } m)
            {
                current = new StringBuilder(m.Groups["sql"].Value);
                statements.Add(current);
            }
            else if (current is not null && line.StartsWith('\t'))
            {
                current.Append('\n').Append(line[1..]);
            }
            else
            {
                current = null;
            }
        }

        return statements
            .SelectMany(s => s.ToString().Split(';'))
            .Where(s => DdlStart().IsMatch(s))
            .Select(s => Truncate(s.Trim(), 200))
            .ToList();
    }

    private static bool LocalPostgresIsInitialized(string dir) => File.Exists(Path.Combine(dir, "PG_VERSION"));

    private static string ReadShared(string path, long offset = 0)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        stream.Seek(Math.Min(offset, stream.Length), SeekOrigin.Begin);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    /// <summary>SIGHUP to the postmaster: the server re-reads postgresql.conf (what <c>pg_ctl reload</c> does).</summary>
    private static async Task SignalReloadAsync(string dataDir)
    {
        var pid = Functions.Drivers.LocalPostgres.PostmasterPid(dataDir) ?? throw new InvalidOperationException($"no postmaster for {dataDir}");
        using var kill = Process.Start("kill", ["-HUP", pid.ToString(CultureInfo.InvariantCulture)])!;
        await kill.WaitForExitAsync();
        Assert.Equal(0, kill.ExitCode);
    }

    private static async Task RunAsTenantAsync(JsonElement credentials, string sql)
    {
        await using var conn = new NpgsqlConnection(TenantInvariants.ConnectionString(credentials));
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        await cmd.ExecuteNonQueryAsync();
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, AllocatorHost host, string what)
    {
        var deadline = DateTimeOffset.UtcNow.AddMinutes(2);
        while (!await condition())
        {
            Assert.True(DateTimeOffset.UtcNow < deadline, $"{what}: not within 2 minutes\n{host.Tail()}");
            await Task.Delay(250);
        }
    }

    private static async Task<long> ScalarAsync(AllocatorHost host, string sql)
    {
        await using var conn = new NpgsqlConnection(host.CatalogConnectionString);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }
}
