using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Azure.Data.Tables;
using Microsoft.Extensions.Options;
using Npgsql;
using TenantDb.Functions.Handoff;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Secrets;
using Xunit.Abstractions;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// Issue 11, secrets (DESIGN.md §8.3: a password exists in clear only in the generating process and in the one response
/// that hands it over): after allocate → claim → rotate → claim, for a tenant that waited for a new pool, one placed at
/// once and one on a dedicated server, no generated password, pool admin password or the catalog's password is in the
/// LocalHost log, nor in clear (or base64, or gzip) anywhere in the task hub's tables, queues and blobs in Azurite.
/// Planted markers prove the scan finds what is there.
/// </summary>
[Trait("Category", Tier.EndToEnd)]
public sealed class SecretsProofTests(ITestOutputHelper output)
{
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(120);

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // the platform's old shape: allocate and rotate answer the password themselves
    public async Task AllocateClaimRotateClaim_NoPasswordInTheLogNorInClearInTheTaskHubStorage(bool inline)
    {
        await using var host = await AllocatorHost.StartAsync(new Dictionary<string, string> { ["Allocation__InlinePassword"] = inline ? "true" : "false" });
        var hub = host["LocalHost__HubName"]!;

        // A tenant that waits for the first pool (the Durable path), one placed at once, one on a dedicated server.
        var waited = Guid.NewGuid();
        var tenants = new List<(Guid Instance, Allocated Allocated)>
        {
            (waited, await AllocateAsync(host, "/api/database/allocate", waited, "standard")),
        };
        var placed = Guid.NewGuid();
        tenants.Add((placed, await AllocateAsync(host, "/api/database/allocate", placed, "standard")));
        var dedicated = Guid.NewGuid();
        tenants.Add((dedicated, await AllocateAsync(host, "/api/database/provision-dedicated", dedicated, "premium")));
        Assert.Equal(inline, tenants[1].Allocated.InlinePassword is not null); // placed at once: inline only in the inline shape

        var claimed = new List<string>();
        foreach (var (instance, allocated) in tenants)
        {
            claimed.Add(allocated.InlinePassword ?? await ClaimAsync(host, allocated.ClaimPath));
            var (rotated, rotation) = await host.SendAsync(HttpMethod.Post, $"/api/database/credentials/{instance}/rotate");
            Assert.Equal(200, rotated);
            var rotatedClaim = new Uri(rotation.GetProperty("credentials").GetProperty("claim_url").GetString()!).PathAndQuery;
            var handedOff = await ClaimAsync(host, rotatedClaim);
            if (inline)
            {
                Assert.Equal(rotation.GetProperty("db_password").GetString(), handedOff);
            }

            claimed.Add(handedOff);
        }

        Assert.Equal(6, claimed.Distinct().Count()); // six claims, six different passwords
        Assert.Subset(host.Seen.Passwords.ToHashSet(), claimed.ToHashSet()); // the host's own capture saw each of them

        // One more rotation, left unclaimed: its password waits in the handoff, so the task hub holds its ciphertext now.
        var (pending, _) = await host.SendAsync(HttpMethod.Post, $"/api/database/credentials/{waited}/rotate");
        Assert.Equal(200, pending);

        // Every other secret the run made: the pool admin passwords and the rotation password pending (from the catalog).
        var stored = await StoredSecretsAsync(host);
        Assert.True(stored.Count >= 3, $"expected the admin passwords of at least two pools and a pending rotation's password, found {stored.Count}");
        var catalogPassword = new NpgsqlConnectionStringBuilder(host.CatalogConnectionString).Password!;
        var secrets = claimed.Concat(stored).Append(catalogPassword).Distinct().ToList();

        // (a) The log of the whole run (asserted below, with the storage, once the summary is written).
        var inLogs = host.SecretsInLog(secrets);

        // (b) The task hub's storage, with planted markers: in clear in an entity, as gzip in a blob, as unaligned base64 in a
        // queue message, and as base64 of gzip inside a JSON string of an entity. Each must be found where it was planted.
        var scan = new TaskHubScan(host["AzureWebJobsStorage"]!, hub);
        var markers = Enumerable.Range(0, 4).Select(_ => PasswordGenerator.Generate(32)).ToArray();
        var control = hub + "ScanControl";
        try
        {
            await PlantAsync(scan, control, markers);
            // Also the instance id (the hub's own data must be read) and how ciphertext begins (shown: the encrypted form is there).
            var needles = secrets.Concat(markers).Append(waited.ToString()).Append(Protector(host).CurrentPrefix).ToList();
            var result = await scan.ScanAsync(needles);
            var markerAt = secrets.Count;

            Assert.Contains(result.Findings, f => f.Needle == markerAt && f.Place.StartsWith($"table {control} ", StringComparison.Ordinal));
            Assert.Contains(result.Findings, f => f.Needle == markerAt + 1 && f.Place.StartsWith($"container {control.ToLowerInvariant()} ", StringComparison.Ordinal));
            Assert.Contains(result.Findings, f => f.Needle == markerAt + 2 && f.Place.StartsWith($"queue {control.ToLowerInvariant()} ", StringComparison.Ordinal));
            Assert.Contains(result.Findings, f => f.Needle == markerAt + 3 && f.Place.StartsWith($"table {control} ", StringComparison.Ordinal));
            // The hub's own data was read: the first tenant's instance id is in it (its handoff entity, its runs).
            Assert.True(result.CountOf(markerAt + 4) > 0, $"the scan did not find the instance id in the hub's storage: {Describe(result)}");

            // The pending password is there, encrypted: where a clear one would be found.
            Assert.True(result.CountOf(markerAt + 5) > 0, $"no ciphertext in the hub's storage while a password is pending: {Describe(result)}");

            var leaks = result.Findings.Where(f => f.Needle < secrets.Count).ToList();
            output.WriteLine($"scanned {Describe(result)}; {secrets.Count} secrets searched; {leaks.Count} found in storage, {inLogs} in the log; " +
                $"ciphertext in {result.CountOf(markerAt + 5)} places");
            var summary = $"proof security: secrets_in_logs={inLogs} secrets_in_storage={leaks.Count}";
            output.WriteLine(summary);
            ProofReport.Write(summary);

            Assert.True(inLogs == 0, $"{inLogs} occurrences of a password in the LocalHost log");
            Assert.True(leaks.Count == 0, "a secret is in the task hub's storage at: " + string.Join("; ", leaks.Select(f => f.Place)));
        }
        finally
        {
            await RemoveAsync(scan, control);
        }
    }

    private static string Describe(TaskHubScan.Result r) =>
        $"{r.Tables} tables/{r.Entities} entities, {r.Queues} queues/{r.Messages} messages, {r.Containers} containers/{r.Blobs} blobs " +
        $"({string.Join(", ", r.Names)})";

    private sealed record Allocated(string ClaimPath, string? InlinePassword);

    /// <summary>Allocates and returns the claim path (or the password, inline), waiting for the run when the answer is 202.</summary>
    private static async Task<Allocated> AllocateAsync(AllocatorHost host, string route, Guid instance, string tier)
    {
        var (status, body) = await host.SendAsync(HttpMethod.Post, route,
            body: new { instance_id = instance.ToString(), customer_id = Guid.NewGuid().ToString(), plan_tier = tier });
        Assert.True(status is 200 or 202, $"{route} answered {status}");
        if (status == 202)
        {
            var done = await host.WaitForOrchestrationAsync(body.GetProperty("orchestration").GetProperty("status_query_get_uri").GetString()!, RunTimeout);
            Assert.Equal("Completed", done.GetProperty("runtimeStatus").GetString());
            body = done.GetProperty("output").GetProperty("allocation");
        }

        if (body.TryGetProperty("db_password", out var inline))
        {
            return new Allocated("", inline.GetString());
        }

        return new Allocated(new Uri(body.GetProperty("credentials").GetProperty("claim_url").GetString()!).PathAndQuery, null);
    }

    /// <summary>Claims (retrying while the handoff answers 503) and returns the password.</summary>
    private static async Task<string> ClaimAsync(AllocatorHost host, string claimPath)
    {
        var deadline = DateTimeOffset.UtcNow.AddSeconds(60);
        while (true)
        {
            var (status, body) = await host.SendAsync(HttpMethod.Post, claimPath);
            if (status == 200)
            {
                return body.GetProperty("db_password").GetString()!;
            }

            Assert.True(status == 503 && DateTimeOffset.UtcNow < deadline, $"claim answered {status}");
            await Task.Delay(1000);
        }
    }

    /// <summary>The secrets the catalog holds encrypted, decrypted with the host's key: pool admin and pending rotation passwords.</summary>
    private static async Task<List<string>> StoredSecretsAsync(AllocatorHost host)
    {
        var protector = Protector(host);
        var secrets = new List<string>();
        await using var conn = new NpgsqlConnection(host.CatalogConnectionString);
        await conn.OpenAsync();
        await using (var pools = new NpgsqlCommand("SELECT name, admin_password_encrypted FROM db_servers", conn))
        await using (var reader = await pools.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                secrets.Add(protector.Unprotect(reader.GetString(1), PoolAdminPasswords.Purpose(reader.GetString(0))));
            }
        }

        await using (var rotations = new NpgsqlCommand(
            "SELECT instance_id, rotation_password_encrypted FROM tenant_databases WHERE rotation_password_encrypted IS NOT NULL", conn))
        await using (var reader = await rotations.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                secrets.Add(protector.Unprotect(reader.GetString(1), HandoffService.Purpose(reader.GetGuid(0))));
            }
        }

        return secrets;
    }

    private static SecretProtector Protector(AllocatorHost host) => new(Options.Create(new SecretsOptions { Key = host["Secrets__Key"]! }));

    private static async Task PlantAsync(TaskHubScan scan, string control, string[] markers)
    {
        var table = scan.Tables.GetTableClient(control);
        await table.CreateIfNotExistsAsync();
        await table.AddEntityAsync(new TableEntity("control", "clear") { ["Input"] = JsonSerializer.Serialize(new { note = markers[0] }) });
        var nested = Convert.ToBase64String(Gzip(JsonSerializer.Serialize(new { payload = markers[3] })));
        await table.AddEntityAsync(new TableEntity("control", "nested") { ["Input"] = JsonSerializer.Serialize(new { blob = nested }) });

        var container = scan.Blobs.GetBlobContainerClient(control.ToLowerInvariant());
        await container.CreateIfNotExistsAsync();
        await container.GetBlobClient("control/message.json.gz").UploadAsync(BinaryData.FromBytes(Gzip(JsonSerializer.Serialize(new { payload = markers[1] }))), overwrite: true);

        var queue = scan.Queues.GetQueueClient(control.ToLowerInvariant());
        await queue.CreateIfNotExistsAsync();
        // One byte before the marker puts it mid-way in a base64 group.
        await queue.SendMessageAsync(Convert.ToBase64String(Encoding.UTF8.GetBytes($"x{markers[2]}")));
    }

    private static async Task RemoveAsync(TaskHubScan scan, string control)
    {
        await scan.Tables.DeleteTableAsync(control);
        await scan.Blobs.GetBlobContainerClient(control.ToLowerInvariant()).DeleteIfExistsAsync();
        await scan.Queues.GetQueueClient(control.ToLowerInvariant()).DeleteIfExistsAsync();
    }

    private static byte[] Gzip(string text)
    {
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.Optimal))
        {
            gzip.Write(Encoding.UTF8.GetBytes(text));
        }

        return buffer.ToArray();
    }
}
