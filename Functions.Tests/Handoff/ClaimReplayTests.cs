using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Api;
using TenantDb.Functions.Handoff;
using TenantDb.Functions.Secrets;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Handoff;

/// <summary>
/// A claim lost on the wire (issue 9, item 8): the entity's keyed claim on the fake entity runtime and the header's
/// validation, with no database; what answers from the catalog (a good key, <c>Cache-Control: no-store</c>) is in
/// <see cref="ClaimReplayCatalogTests"/>. The whole retry runs end to end on LocalHost.
/// </summary>
[Trait("Category", Tier.Unit)]
public sealed class ClaimReplayTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 24, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Window = TimeSpan.FromMinutes(5);
    private readonly SecretProtector _secrets = new(Options.Create(new SecretsOptions { Key = SecretProtector.GenerateKey() }));
    private readonly Guid _instance = Guid.NewGuid();

    private HandoffDeposit Seal(string password, long? rotation = null) =>
        new(_secrets.Protect(password, HandoffService.Purpose(_instance)), T0, T0 + TimeSpan.FromHours(1), "login_b", rotation);

    private static async Task<ClaimResult> ClaimAsync(FakeEntityRuntime runtime, DateTimeOffset now, string? key) => key is null
        ? (await runtime.RunAsync<ClaimResult>(new CredentialHandoff(), nameof(CredentialHandoff.Claim), now))!
        : (await runtime.RunAsync<ClaimResult>(new CredentialHandoff(), nameof(CredentialHandoff.ClaimIdempotent),
            new IdempotentClaim(now, HandoffTaskHub.KeyHash(key), Window)))!;

    [Fact]
    [Trait("Issue9", "8")]
    public async Task ClaimIdempotent_SameKeyWithinTheWindow_SameCiphertextAndLogin_OtherKeyOrNoKeyGone()
    {
        var runtime = new FakeEntityRuntime(CredentialHandoff.IdFor(_instance));
        var password = PasswordGenerator.Generate(40);
        await runtime.RunAsync(new CredentialHandoff(), nameof(CredentialHandoff.Deposit), Seal(password, rotation: 7));

        var first = await ClaimAsync(runtime, T0.AddMinutes(1), "key-0123456789abcdef");
        var retry = await ClaimAsync(runtime, T0.AddMinutes(3), "key-0123456789abcdef");
        var other = await ClaimAsync(runtime, T0.AddMinutes(3), "key-fedcba9876543210");
        var plain = await ClaimAsync(runtime, T0.AddMinutes(3), null);

        Assert.Equal(ClaimStatus.Claimed, first.Status);
        Assert.Equal((ClaimStatus.Claimed, first.Ciphertext, "login_b", 7L, true), (retry.Status, retry.Ciphertext, retry.Login, retry.RotationId!.Value, retry.Replayed));
        Assert.Equal(password, _secrets.Unprotect(retry.Ciphertext!, HandoffService.Purpose(_instance)));
        Assert.Equal(ClaimStatus.AlreadyClaimed, other.Status);
        Assert.Equal(ClaimStatus.AlreadyClaimed, plain.Status);
        Assert.DoesNotContain("key-0123456789abcdef", runtime.State.Json); // only its hash is stored
        Assert.Contains(runtime.Context.Signals, s => s.Operation == nameof(CredentialHandoff.Expire) && s.SignalTime == T0.AddMinutes(1) + Window);
    }

    [Fact]
    [Trait("Issue9", "8")]
    public async Task ClaimIdempotent_SameKeyAfterTheWindow_GoneAndTheCiphertextLeftTheState()
    {
        var runtime = new FakeEntityRuntime(CredentialHandoff.IdFor(_instance));
        var deposit = Seal(PasswordGenerator.Generate(40));
        await runtime.RunAsync(new CredentialHandoff(), nameof(CredentialHandoff.Deposit), deposit);
        await ClaimAsync(runtime, T0.AddMinutes(1), "key-0123456789abcdef");

        await runtime.RunAsync(new CredentialHandoff(), nameof(CredentialHandoff.Expire), T0.AddMinutes(1) + Window);
        var late = await ClaimAsync(runtime, T0.AddMinutes(1) + Window, "key-0123456789abcdef");

        Assert.Equal(ClaimStatus.AlreadyClaimed, late.Status);
        Assert.DoesNotContain(deposit.Ciphertext, runtime.State.Json);
    }

    [Fact]
    [Trait("Issue9", "7")]
    public async Task Deposit_OfAnOlderRotationAfterANewerOne_IsIgnored()
    {
        var runtime = new FakeEntityRuntime(CredentialHandoff.IdFor(_instance));
        var newer = Seal(PasswordGenerator.Generate(40), rotation: 9);
        await runtime.RunAsync(new CredentialHandoff(), nameof(CredentialHandoff.Deposit), newer);

        await runtime.RunAsync(new CredentialHandoff(), nameof(CredentialHandoff.Deposit), Seal(PasswordGenerator.Generate(40), rotation: 8));
        var claim = await ClaimAsync(runtime, T0.AddMinutes(1), null);

        Assert.Equal((newer.Ciphertext, 9L), (claim.Ciphertext, claim.RotationId!.Value));
    }

    public static TheoryData<string[]> BadKeys() => new()
    {
        new[] { "short" },
        new[] { "has spaces in it 0123456789" },
        new[] { new string('k', 129) },
        new[] { "ключ-0123456789abcdef" },
        new[] { "\"unterminated-0123456789" },
        new[] { "key-0123456789abcdef", "key-fedcba9876543210" },
        new[] { "" },
    };

    [Theory]
    [Trait("Issue9", "8")]
    [MemberData(nameof(BadKeys))]
    public async Task Claim_MalformedIdempotencyKey_400ProblemBeforeAnythingIsTaken(string[] values)
    {
        await using var app = OfflineApp.Start();
        var functions = ActivatorUtilities.CreateInstance<CredentialsFunctions>(app.Services);
        var id = Guid.NewGuid().ToString();
        var request = Http.Request("POST", $"/api/database/credentials/{id}/claim");
        request.Headers[CredentialsFunctions.IdempotencyKeyHeader] = values;

        // No Durable client: a refused key never reaches the handoff.
        var (status, contentType, problem) = Http.Read(await functions.ClaimDatabaseCredentials(request, id, null!, default));

        Assert.Equal(400, status);
        Assert.Equal(Problems.ContentType, contentType);
        Assert.Equal(Problems.TypePrefix + "invalid-idempotency-key", problem.GetProperty("type").GetString());
    }

    [Fact]
    [Trait("Issue9", "8")]
    public async Task Options_ClaimReplayWindowOutOfRange_FailValidation()
    {
        await using var app = OfflineApp.Start(new Dictionary<string, string?> { ["Handoff:ClaimReplayWindow"] = "02:00:00" });

        Assert.Throws<OptionsValidationException>(() => app.Get<IOptions<HandoffOptions>>().Value);
    }
}

/// <summary>The claim-replay answers that come from the catalog: a well-formed key gets past the check, an inline password is no-store.</summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class ClaimReplayCatalogTests(PostgresFixture fixture)
{
    [Theory]
    [Trait("Issue9", "8")]
    [InlineData("0f8fad5b-d9cb-469f-a165-70867728950e")]
    [InlineData("\"0f8fad5b-d9cb-469f-a165-70867728950e\"")]
    [InlineData("abcdefghijklmnop")]
    public async Task Claim_WellFormedIdempotencyKey_Accepted(string key)
    {
        await using var app = await TestApp.StartAsync(fixture);
        var functions = ActivatorUtilities.CreateInstance<CredentialsFunctions>(app.Services);
        var id = Guid.NewGuid().ToString();
        var request = Http.Request("POST", $"/api/database/credentials/{id}/claim");
        request.Headers[CredentialsFunctions.IdempotencyKeyHeader] = key;

        var (status, _, problem) = Http.Read(await functions.ClaimDatabaseCredentials(request, id, null!, default));

        Assert.Equal(404, status); // past the key check: an unknown instance
        Assert.Equal(Problems.TypePrefix + "credentials-not-found", problem.GetProperty("type").GetString());
    }

    [Fact]
    [Trait("Issue9", "8")]
    public async Task Allocate_InlinePassword_200IsNoStore()
    {
        await using var app = await TestApp.StartAsync(fixture, new Dictionary<string, string?> { ["Allocation:InlinePassword"] = "true" });
        await using var engine = await InMemoryEngine.StartAsync(_ => { });
        await app.AddPoolAsync(fixture.Pools[1], 10);
        var functions = ActivatorUtilities.CreateInstance<AllocationFunctions>(app.Services);
        var request = Http.Request("POST", "/api/database/allocate", Http.Json(new
        {
            instance_id = Guid.NewGuid().ToString(), customer_id = Guid.NewGuid().ToString(), plan_tier = "standard",
        }));

        var (status, _, body) = Http.Read(await functions.AllocateDatabase(request, engine.Client, default));

        Assert.Equal(200, status);
        Assert.True(body.TryGetProperty("db_password", out _));
        Assert.Equal("no-store", request.HttpContext.Response.Headers.CacheControl.ToString());
    }
}
