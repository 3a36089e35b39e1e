using TenantDb.Functions.Allocations;
using TenantDb.Functions.Handoff;
using TenantDb.Functions.Secrets;
using TenantDb.Functions.Tests.Infrastructure;
using TenantDb.Functions.Drivers;

namespace TenantDb.Functions.Tests.Api;

/// <summary>
/// Every log line of the suite is captured (<see cref="CapturedLogs"/>). This test drives every path that makes a
/// secret — allocation, a failed allocation, rotation, pool provisioning — and finds none of those secrets in any line.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class SecretsInLogsTests(PostgresFixture fixture)
{
    [Fact]
    public async Task Logs_AllSecretMakingPaths_ContainNoGeneratedSecret()
    {
        var secrets = new List<string>();
        await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?>
        {
            ["Provisioning:Driver"] = "process",
            ["Provisioning:Process:DataRoot"] = Path.Combine(PostgresFixture.Root, "secret-pools"),
            ["Allocation:MaxPlacementAttempts"] = "2",
        });
        var doomed = await fixture.StartServerAsync($"leak-{Guid.NewGuid():N}"[..12], null);
        await app.AddPoolAsync(doomed, 10, priority: 1);
        await app.AddPoolAsync(fixture.Pools[0], 10, priority: 2);
        var instance = Guid.NewGuid();

        var allocated = Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(
            new AllocationRequest(instance.ToString(), Guid.NewGuid().ToString(), "standard"), CancellationToken.None));
        secrets.Add(allocated.Password!.Reveal());
        await doomed.StopAsync(); // the next allocation fails on this pool, is compensated and logged, and lands on pool-a
        var failedOver = Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(
            new AllocationRequest(Guid.NewGuid().ToString(), Guid.NewGuid().ToString(), "standard"), CancellationToken.None));
        secrets.Add(failedOver.Password!.Reveal());
        var rotated = Assert.IsType<PasswordChange.Changed>(await app.Get<PasswordRotation>().ChangePasswordAsync(
            failedOver.Tenant.InstanceId, CancellationToken.None));
        secrets.Add(rotated.Password.Reveal());

        var driver = app.Get<PoolProvisioners>().For("process");
        var spec = new PoolServerSpec($"leak-{Guid.NewGuid():N}"[..12], "shared", "tenantdb_admin", PasswordGenerator.Generate(40), null, null);
        secrets.Add(spec.AdminPassword);
        var endpoint = await driver.CreateAsync(spec, CancellationToken.None);
        await driver.DeleteAsync(new PoolServerRef(spec.Name, endpoint.ResourceId, endpoint.Host, endpoint.Port, spec.AdminUser, spec.AdminPassword), CancellationToken.None);

        var logs = string.Join('\n', CapturedLogs.All);
        Assert.Contains("failed on pool", logs); // the failure path really logged
        Assert.All(secrets, secret => Assert.DoesNotContain(secret, logs));
        var poolLog = await File.ReadAllTextAsync(fixture.Pools[0].LogFile);
        Assert.All(secrets, secret => Assert.DoesNotContain(secret, poolLog));
    }
}
