using Microsoft.Extensions.DependencyInjection;
using TenantDb.Functions.Allocations;
using TenantDb.Functions.Api;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Handoff;

/// <summary>
/// The claim and rotate routes called directly, against the real catalog and pools. Answers that need the entity
/// (200 claim, 410) run end to end on the LocalHost engine; the in-memory engine here has no entities.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class CredentialsFunctionsTests(PostgresFixture fixture)
{
    [Fact]
    public async Task Claim_UnknownInstance_404Problem()
    {
        await using var app = await TestApp.StartAsync(fixture);
        await using var engine = await InMemoryEngine.StartAsync(_ => { });
        var functions = ActivatorUtilities.CreateInstance<CredentialsFunctions>(app.Services);
        var id = Guid.NewGuid().ToString();

        var (status, contentType, problem) = Http.Read(await functions.ClaimDatabaseCredentials(
            Http.Request("POST", $"/api/database/credentials/{id}/claim"), id, engine.Client, default));

        Assert.Equal(404, status);
        Assert.Equal(Problems.ContentType, contentType);
        Assert.Equal(Problems.TypePrefix + "credentials-not-found", problem.GetProperty("type").GetString());
    }

    [Fact]
    public async Task Rotate_UnknownInstance_404Problem()
    {
        await using var app = await TestApp.StartAsync(fixture);
        await using var engine = await InMemoryEngine.StartAsync(_ => { });
        var functions = ActivatorUtilities.CreateInstance<CredentialsFunctions>(app.Services);
        var id = Guid.NewGuid().ToString();

        var (status, _, problem) = Http.Read(await functions.RotateDatabaseCredentials(
            Http.Request("POST", $"/api/database/credentials/{id}/rotate"), id, engine.Client, default));

        Assert.Equal(404, status);
        Assert.Equal(Problems.TypePrefix + "allocation-not-found", problem.GetProperty("type").GetString());
    }

    [Fact]
    public async Task Rotate_ReleasedInstance_409ProblemAndNoNewPassword()
    {
        await using var app = await TestApp.StartAsync(fixture);
        await using var engine = await InMemoryEngine.StartAsync(_ => { });
        await app.AddPoolAsync(fixture.Pools[1], 10);
        var instance = Guid.NewGuid();
        var request = new AllocationRequest(instance.ToString(), Guid.NewGuid().ToString(), "standard");
        Assert.IsType<AllocationOutcome.Allocated>(await app.Allocation.AllocateAsync(request, CancellationToken.None));
        await app.Allocation.ReleaseAsync(instance, "test", CancellationToken.None);
        var functions = ActivatorUtilities.CreateInstance<CredentialsFunctions>(app.Services);

        var (status, contentType, problem) = Http.Read(await functions.RotateDatabaseCredentials(
            Http.Request("POST", $"/api/database/credentials/{instance}/rotate"), instance.ToString(), engine.Client, default));

        Assert.Equal(409, status);
        Assert.Equal(Problems.ContentType, contentType);
        Assert.Equal(Problems.TypePrefix + "allocation-not-ready", problem.GetProperty("type").GetString());
        Assert.False(problem.TryGetProperty("db_password", out _));
    }
}

/// <summary>The claim and rotate routes refusing an id that is not a canonical UUID, before any catalog or engine work.</summary>
[Trait("Category", Tier.Unit)]
public sealed class CredentialsInputTests
{
    public static TheoryData<string> BadIds() => new()
    {
        "not-a-uuid",
        "'; DROP TABLE tenant_databases; --",
        Guid.NewGuid().ToString("N"),
        "{" + Guid.NewGuid() + "}",
        Guid.Empty.ToString(),
        new string('a', 5000),
    };

    [Theory]
    [MemberData(nameof(BadIds))]
    public async Task Claim_NotACanonicalUuid_400Problem(string id)
    {
        await using var app = OfflineApp.Start();
        var functions = ActivatorUtilities.CreateInstance<CredentialsFunctions>(app.Services);

        var (status, contentType, problem) = Http.Read(await functions.ClaimDatabaseCredentials(
            Http.Request("POST", $"/api/database/credentials/{Uri.EscapeDataString(id)}/claim"), id, null!, default));

        Assert.Equal(400, status);
        Assert.Equal(Problems.ContentType, contentType);
        Assert.Equal(Problems.TypePrefix + "invalid-instance-id", problem.GetProperty("type").GetString());
    }

    [Theory]
    [MemberData(nameof(BadIds))]
    public async Task Rotate_NotACanonicalUuid_400Problem(string id)
    {
        await using var app = OfflineApp.Start();
        var functions = ActivatorUtilities.CreateInstance<CredentialsFunctions>(app.Services);

        var (status, _, _) = Http.Read(await functions.RotateDatabaseCredentials(
            Http.Request("POST", $"/api/database/credentials/{Uri.EscapeDataString(id)}/rotate"), id, null!, default));

        Assert.Equal(400, status);
    }
}
