using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Handoff;
using TenantDb.Functions.Secrets;

namespace TenantDb.Functions.Tests.Handoff;

/// <summary>
/// The <see cref="CredentialHandoff"/> entity through its operations, on a fake entity runtime (the in-memory Durable
/// engine has no entities). The <see cref="ClaimCredentials"/> orchestrator calls this entity, so it is not run on
/// InProcessTestHost here either: the LocalHost end-to-end tests cover claim runs on the real engine.
/// </summary>
[Trait("Category", Tier.Unit)]
public sealed class CredentialHandoffTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 24, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Ttl = TimeSpan.FromHours(1);
    private readonly SecretProtector _secrets = new(Options.Create(new SecretsOptions { Key = SecretProtector.GenerateKey() }));
    private readonly Guid _instance = Guid.NewGuid();
    private readonly FakeEntityRuntime _runtime;

    public CredentialHandoffTests() => _runtime = new FakeEntityRuntime(CredentialHandoff.IdFor(_instance));

    private HandoffDeposit Seal(string password, DateTimeOffset at) =>
        new(_secrets.Protect(password, HandoffService.Purpose(_instance)), at, at + Ttl);

    private Task DepositAsync(HandoffDeposit deposit) => _runtime.RunAsync(new CredentialHandoff(), nameof(CredentialHandoff.Deposit), deposit);

    private async Task<ClaimResult> ClaimAsync(DateTimeOffset now) =>
        (await _runtime.RunAsync<ClaimResult>(new CredentialHandoff(), nameof(CredentialHandoff.Claim), now))!;

    private Task<HandoffMetadata?> PeekAsync() => _runtime.RunAsync<HandoffMetadata>(new CredentialHandoff(), nameof(CredentialHandoff.Peek));

    /// <summary>The ciphertext as the stored state holds it (null when there is none, or no state).</summary>
    private string? StoredCiphertext => _runtime.State.Json is { } json
        ? System.Text.Json.JsonDocument.Parse(json).RootElement.GetProperty(nameof(HandoffState.Ciphertext)).GetString()
        : null;

    private Task ExpireAsync(DateTimeOffset now) => _runtime.RunAsync(new CredentialHandoff(), nameof(CredentialHandoff.Expire), now);

    [Fact]
    public async Task Deposit_ThenPeek_ShowsMetadataButNeverCiphertextOrPassword()
    {
        var password = PasswordGenerator.Generate(40);
        var deposit = Seal(password, T0);

        await DepositAsync(deposit);
        var peek = await PeekAsync();

        Assert.NotNull(peek);
        Assert.Equal(new HandoffMetadata(T0, T0 + Ttl, ClaimedAt: null, Claimable: true), peek);
        var peekJson = System.Text.Json.JsonSerializer.Serialize(peek, new System.Text.Json.JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        Assert.DoesNotContain(deposit.Ciphertext, peekJson);
        Assert.DoesNotContain(password, peekJson);
        // The stored state holds the ciphertext, never the password.
        Assert.Equal(deposit.Ciphertext, StoredCiphertext);
        Assert.DoesNotContain(password, _runtime.State.Json);
    }

    [Fact]
    public async Task Deposit_Always_SchedulesItsOwnExpiryAtExpiresAt()
    {
        await DepositAsync(Seal(PasswordGenerator.Generate(40), T0));

        var signal = Assert.Single(_runtime.Context.Signals);
        Assert.Equal(CredentialHandoff.IdFor(_instance), signal.Id);
        Assert.Equal(nameof(CredentialHandoff.Expire), signal.Operation);
        Assert.Equal(T0 + Ttl, signal.SignalTime);
        Assert.Equal(T0 + Ttl, signal.Input);
    }

    [Fact]
    public async Task Claim_AfterDeposit_ReturnsCiphertextThatDecryptsToThePassword()
    {
        var password = PasswordGenerator.Generate(40);
        await DepositAsync(Seal(password, T0));

        var claim = await ClaimAsync(T0 + TimeSpan.FromMinutes(5));

        Assert.Equal(ClaimStatus.Claimed, claim.Status);
        Assert.Equal(T0 + Ttl, claim.ExpiresAt);
        Assert.Equal(password, _secrets.Unprotect(claim.Ciphertext!, HandoffService.Purpose(_instance)));
    }

    [Fact]
    public async Task Claim_Twice_SecondIsAlreadyClaimedAndCiphertextIsGoneFromState()
    {
        var deposit = Seal(PasswordGenerator.Generate(40), T0);
        await DepositAsync(deposit);
        await ClaimAsync(T0 + TimeSpan.FromMinutes(1));

        var second = await ClaimAsync(T0 + TimeSpan.FromMinutes(2));

        Assert.Equal(ClaimStatus.AlreadyClaimed, second.Status);
        Assert.Null(second.Ciphertext);
        Assert.Null(StoredCiphertext);
        Assert.True(_runtime.State.HasState);
        Assert.Equal(new HandoffMetadata(T0, T0 + Ttl, T0 + TimeSpan.FromMinutes(1), Claimable: false), await PeekAsync());
    }

    [Fact]
    public async Task Claim_AfterExpiry_IsExpiredAndDropsCiphertext()
    {
        var deposit = Seal(PasswordGenerator.Generate(40), T0);
        await DepositAsync(deposit);

        var claim = await ClaimAsync(T0 + Ttl);

        Assert.Equal(ClaimStatus.Expired, claim.Status);
        Assert.Null(claim.Ciphertext);
        Assert.Null(StoredCiphertext);
        Assert.True(_runtime.State.HasState);
        Assert.Equal(ClaimStatus.Expired, (await ClaimAsync(T0 + Ttl + TimeSpan.FromMinutes(1))).Status);
    }

    [Fact]
    public async Task Claim_UnknownInstance_IsUnknownAndCreatesNoState()
    {
        var claim = await ClaimAsync(T0);

        Assert.Equal(ClaimStatus.Unknown, claim.Status);
        Assert.False(_runtime.State.HasState);
        Assert.Null(await PeekAsync());
    }

    [Fact]
    public async Task Deposit_AfterClaim_ReplacesTheTombstoneWithTheRotatedPassword()
    {
        await DepositAsync(Seal(PasswordGenerator.Generate(40), T0));
        await ClaimAsync(T0 + TimeSpan.FromMinutes(1));
        var rotated = PasswordGenerator.Generate(40);

        await DepositAsync(Seal(rotated, T0 + TimeSpan.FromMinutes(10)));
        var claim = await ClaimAsync(T0 + TimeSpan.FromMinutes(11));

        Assert.Equal(ClaimStatus.Claimed, claim.Status);
        Assert.Equal(T0 + TimeSpan.FromMinutes(10) + Ttl, claim.ExpiresAt);
        Assert.Equal(rotated, _secrets.Unprotect(claim.Ciphertext!, HandoffService.Purpose(_instance)));
    }

    [Fact]
    public async Task Deposit_AllocationsOwnArrivingAfterARotation_IsIgnoredButALaterAllocationsIsTaken()
    {
        // The allocation's deposit (made at T0) queued behind a restart; meanwhile the client was told to rotate (T0+7).
        var rotated = PasswordGenerator.Generate(40);
        await DepositAsync(Seal(rotated, T0 + TimeSpan.FromMinutes(7)) with { Login = "odoo_x_b", RotationId = 5 });

        await DepositAsync(Seal(PasswordGenerator.Generate(40), T0));
        var claim = await ClaimAsync(T0 + TimeSpan.FromMinutes(8));

        Assert.Equal(rotated, _secrets.Unprotect(claim.Ciphertext!, HandoffService.Purpose(_instance)));
        Assert.Equal(5, claim.RotationId);

        // The instance released, purged and allocated again: its new deposit is newer than the tombstone, and taken.
        var again = PasswordGenerator.Generate(40);
        await DepositAsync(Seal(again, T0 + TimeSpan.FromMinutes(30)));
        var second = await ClaimAsync(T0 + TimeSpan.FromMinutes(31));
        Assert.Equal(again, _secrets.Unprotect(second.Ciphertext!, HandoffService.Purpose(_instance)));
    }

    [Fact]
    public async Task Deposit_SameAllocationsFirstPasswordAgainAfterItsClaim_IsIgnored()
    {
        // A claim re-deposited the catalog's copy of the first password (its original signal was late) and took it; the
        // original signal arrives afterwards. Both carry the row's ready_at: the same password must not be claimable twice.
        var password = PasswordGenerator.Generate(40);
        await DepositAsync(Seal(password, T0));
        Assert.Equal(ClaimStatus.Claimed, (await ClaimAsync(T0 + TimeSpan.FromMinutes(1))).Status);

        await DepositAsync(Seal(password, T0));

        Assert.Equal(ClaimStatus.AlreadyClaimed, (await ClaimAsync(T0 + TimeSpan.FromMinutes(2))).Status);
    }

    [Fact]
    public async Task Deposit_Unclaimed_ReplacesTheEarlierPassword()
    {
        await DepositAsync(Seal(PasswordGenerator.Generate(40), T0));
        var second = PasswordGenerator.Generate(40);

        await DepositAsync(Seal(second, T0 + TimeSpan.FromMinutes(1)));
        var claim = await ClaimAsync(T0 + TimeSpan.FromMinutes(2));

        Assert.Equal(second, _secrets.Unprotect(claim.Ciphertext!, HandoffService.Purpose(_instance)));
        Assert.Equal(ClaimStatus.AlreadyClaimed, (await ClaimAsync(T0 + TimeSpan.FromMinutes(3))).Status);
    }

    [Fact]
    public async Task Expire_AtExpiry_DropsCiphertextKeepsTombstoneThenDeletesTheEntity()
    {
        var deposit = Seal(PasswordGenerator.Generate(40), T0);
        await DepositAsync(deposit);

        await ExpireAsync(T0 + Ttl);

        Assert.Null(StoredCiphertext);
        Assert.True(_runtime.State.HasState);
        Assert.Equal(ClaimStatus.Expired, (await ClaimAsync(T0 + Ttl + TimeSpan.FromMinutes(1))).Status);
        var forget = _runtime.Context.Signals[^1];
        Assert.Equal(nameof(CredentialHandoff.Expire), forget.Operation);
        Assert.Equal(T0 + 2 * Ttl, forget.SignalTime);

        await ExpireAsync(T0 + 2 * Ttl);

        Assert.False(_runtime.State.HasState);
        Assert.Equal(ClaimStatus.Unknown, (await ClaimAsync(T0 + 2 * Ttl)).Status);
    }

    [Fact]
    public async Task Expire_SignalOfAReplacedDeposit_LeavesTheNewDepositClaimable()
    {
        await DepositAsync(Seal(PasswordGenerator.Generate(40), T0));
        var rotated = PasswordGenerator.Generate(40);
        await DepositAsync(Seal(rotated, T0 + TimeSpan.FromMinutes(30)));

        await ExpireAsync(T0 + Ttl); // the first deposit's scheduled signal

        var claim = await ClaimAsync(T0 + Ttl + TimeSpan.FromMinutes(1));
        Assert.Equal(ClaimStatus.Claimed, claim.Status);
        Assert.Equal(rotated, _secrets.Unprotect(claim.Ciphertext!, HandoffService.Purpose(_instance)));
    }

    [Fact]
    public async Task Expire_WhenNothingIsHeld_IsANoOp()
    {
        await ExpireAsync(T0);

        Assert.False(_runtime.State.HasState);
        Assert.Empty(_runtime.Context.Signals);
    }

    [Fact]
    public void Ciphertext_ForOneInstance_CannotBeDecryptedAsAnotherInstances()
    {
        var ciphertext = Seal(PasswordGenerator.Generate(40), T0).Ciphertext;

        Assert.ThrowsAny<CryptographicException>(() => _secrets.Unprotect(ciphertext, HandoffService.Purpose(Guid.NewGuid())));
        Assert.ThrowsAny<CryptographicException>(() => _secrets.Unprotect(ciphertext, $"pool-admin:{_instance:D}"));
    }

    [Fact]
    public void IdFor_Instance_IsTheEntityNameAndTheLowerCaseCanonicalKey()
    {
        var instance = Guid.Parse("D2F0A1B3-C4D5-46E7-8F90-123456789ABC");

        var id = CredentialHandoff.IdFor(instance);

        Assert.Equal("d2f0a1b3-c4d5-46e7-8f90-123456789abc", id.Key);
        Assert.Equal(nameof(CredentialHandoff), id.Name, ignoreCase: true);
    }
}
