using System.Security.Cryptography;
using System.Text;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Catalog;
using TenantDb.Functions.Handoff;
using TenantDb.Functions.Pools;
using TenantDb.Functions.Secrets;
using TenantDb.Functions.Tests.Infrastructure;
using TenantDb.Functions.Timers;
using TenantDb.Functions.Administration;
using TenantDb.Functions.Domain;

namespace TenantDb.Functions.Tests.KeysAndPasswords;

/// <summary>
/// Rotation of the secrets key (issue 9, item 9) against real pool servers and a real catalog: a new current key with the
/// old one kept for decryption, the catalog's ciphertext re-wrapped (operator's action and the sweep's bounded step), then the
/// old key removed. Three app instances on one catalog stand for three deployments of the configuration.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", Tier.Database)]
public sealed class KeyRotationTests(PostgresFixture fixture)
{
    private static readonly CancellationToken None = CancellationToken.None;

    /// <summary>A ciphertext in the format written before key ids existed: <c>v1:</c> + base64(nonce | tag | ciphertext).</summary>
    internal static string FirstFormat(string base64Key, string plaintext, string purpose)
    {
        var clear = Encoding.UTF8.GetBytes(plaintext);
        var buffer = new byte[12 + 16 + clear.Length];
        RandomNumberGenerator.Fill(buffer.AsSpan(0, 12));
        using var aes = new AesGcm(Convert.FromBase64String(base64Key), 16);
        aes.Encrypt(buffer.AsSpan(0, 12), clear, buffer.AsSpan(28), buffer.AsSpan(12, 16), Encoding.UTF8.GetBytes(purpose));
        return "v1:" + Convert.ToBase64String(buffer);
    }

    private Task<TestApp> StartOnCatalogAsync(TestApp? first, Dictionary<string, string?> secrets)
    {
        var settings = new Dictionary<string, string?>(secrets) { ["Pools:MinFreeSlots"] = "0" };
        if (first is not null)
        {
            settings["ConnectionStrings:Catalog"] = first.Get<CatalogOptions>().ConnectionString;
        }

        return TestApp.StartAsync(fixture, settings);
    }

    private static async Task AssertEveryPoolHealthyAsync(TestApp app, IEnumerable<Pool> pools)
    {
        foreach (var pool in pools)
        {
            var outcome = await app.Get<HealthService>().CheckAsync(pool.Id, None);
            var report = Assert.IsType<AdminOutcome<PoolHealthReport>.Done>(outcome).Value;
            Assert.True(report.Reachable, $"{pool.Name}: {report.Error}");
            Assert.Equal(HealthStatus.Healthy, report.HealthStatus);
        }
    }

    private static Task<long> CountNotUnderAsync(TestApp app, string keyId) =>
        app.CatalogScalarAsync<long>("SELECT count(*) FROM db_servers WHERE admin_password_encrypted NOT LIKE @prefix", ("prefix", $"v2:{keyId}:%"));

    [Fact]
    [Trait("Issue9", "9")]
    public async Task Rotate_NewCurrentKeyOldKept_PoolsHealthyHandoffsOpenRewrapLeavesNoOldKidAndOldKeyCanGo()
    {
        var oldKey = SecretProtector.GenerateKey();
        var newKey = SecretProtector.GenerateKey();
        await using var before = await StartOnCatalogAsync(null, new() { ["Secrets:Key"] = oldKey });
        var pools = new List<Pool>
        {
            await before.AddPoolAsync(fixture.Pools[0], 10),
            await before.AddPoolAsync(fixture.Pools[1], 10),
        };
        // One pool stored in the first format (no key id), as every deployment before key ids holds them.
        var legacyName = $"legacy-{Guid.NewGuid():N}"[..15];
        var legacy = await before.AddPoolAsync(legacyName, "127.0.0.1", fixture.Pools[2].Port, TestServer.Superuser, fixture.Pools[2].Password, "registered", 10);
        await using (var cmd = before.Catalog.CreateCommand("UPDATE db_servers SET admin_password_encrypted = @c WHERE id = @id"))
        {
            cmd.Parameters.AddWithValue("c", FirstFormat(oldKey, fixture.Pools[2].Password, PoolAdminPasswords.Purpose(legacyName)));
            cmd.Parameters.AddWithValue("id", legacy.Id);
            await cmd.ExecuteNonQueryAsync();
        }

        pools.Add(legacy);
        var handoffs = Enumerable.Range(0, 3).Select(_ => (Instance: Guid.NewGuid(), Password: PasswordGenerator.Generate(40))).ToList();
        var deposits = handoffs.Select(h => before.Get<HandoffService>().Seal(h.Instance, new Secret(h.Password))).ToList();
        var oldKid = before.Get<SecretProtector>().CurrentKeyId;
        Assert.StartsWith($"v2:{oldKid}:", deposits[0].Ciphertext);

        // Rotate: the new key encrypts, the old one (still Secrets:Key) only decrypts.
        await using var rotated = await StartOnCatalogAsync(before, new()
        {
            ["Secrets:Key"] = oldKey,
            ["Secrets:Keys:k2"] = newKey,
            ["Secrets:CurrentKeyId"] = "k2",
        });
        var protector = rotated.Get<SecretProtector>();

        await AssertEveryPoolHealthyAsync(rotated, pools);
        foreach (var (handoff, deposit) in handoffs.Zip(deposits))
        {
            Assert.Equal(handoff.Password, protector.Unprotect(deposit.Ciphertext, HandoffService.Purpose(handoff.Instance)));
        }

        Assert.StartsWith("v2:k2:", rotated.Get<HandoffService>().Seal(Guid.NewGuid(), new Secret("x")).Ciphertext);
        Assert.Equal(3, await CountNotUnderAsync(rotated, "k2"));

        // As the admin route runs it: under the name of the operator's key.
        var summary = await AuditActor.RunAsync(Actors.Key("ops"), () => rotated.Get<KeyRotationService>().RewrapAllAsync(None));

        Assert.Equal(new RewrapSummary("k2", 3, 0, 0, 0), summary);
        Assert.Equal(0, await CountNotUnderAsync(rotated, "k2"));
        Assert.Equal(0, await rotated.CatalogScalarAsync<long>(
            "SELECT count(*) FROM db_servers WHERE admin_password_encrypted LIKE @old OR admin_password_encrypted LIKE 'v1:%'", ("old", $"v2:{oldKid}:%")));
        Assert.Equal(3, await rotated.CatalogScalarAsync<long>(
            "SELECT count(*) FROM pool_events WHERE event = 'admin_password_rewrapped' AND actor = 'key:ops'"));
        Assert.Equal(new RewrapSummary("k2", 0, 0, 0, 0), await rotated.Get<KeyRotationService>().RewrapAllAsync(None));

        // The old key removed: every pool still answers.
        await using var after = await StartOnCatalogAsync(before, new()
        {
            ["Secrets:Key"] = "",
            ["Secrets:Keys:k2"] = newKey,
            ["Secrets:CurrentKeyId"] = "k2",
        });
        await AssertEveryPoolHealthyAsync(after, pools);
        Assert.Throws<CryptographicException>(() => after.Get<SecretProtector>().Unprotect(deposits[0].Ciphertext, HandoffService.Purpose(handoffs[0].Instance)));

        var logs = string.Join('\n', CapturedLogs.All);
        Assert.False(logs.Contains(oldKey, StringComparison.Ordinal) || logs.Contains(newKey, StringComparison.Ordinal), "a key reached a log line");
        Assert.Contains("Secrets re-wrapped under key k2: 3 rewrapped", logs);
    }

    [Fact]
    [Trait("Issue9", "9")]
    public async Task Sweep_StaleCiphertexts_RewrapsABoundedBatchPerRun()
    {
        var oldKey = SecretProtector.GenerateKey();
        await using var before = await StartOnCatalogAsync(null, new() { ["Secrets:Key"] = oldKey });
        for (var i = 0; i < 3; i++)
        {
            await before.AddPoolAsync(fixture.Pools[i], 10);
        }

        await using var rotated = await StartOnCatalogAsync(before, new()
        {
            ["Secrets:Key"] = oldKey,
            ["Secrets:Keys:k2"] = SecretProtector.GenerateKey(),
            ["Secrets:CurrentKeyId"] = "k2",
            ["Secrets:RewrapBatchSize"] = "2",
        });
        var sweep = new HealthSweep(rotated.Get<HealthService>(), rotated.Recovery, rotated.Get<TenantDb.Functions.Stock.WarmStockService>(), rotated.Get<TenantDb.Functions.Provisioning.ProvisioningService>(),
            rotated.Get<TenantDb.Functions.Handoff.PasswordRotation>(), rotated.Get<KeyRotationService>(), rotated.Get<TenantDb.Functions.Backups.BackupSchedule>(), rotated.Get<TenantDb.Functions.Moves.StuckMoveRecovery>());
        await using var engine = await InMemoryEngine.StartAsync(_ => { });

        await sweep.Run(new TimerInfo(), engine.Client, None);
        Assert.Equal(1, await CountNotUnderAsync(rotated, "k2"));

        await sweep.Run(new TimerInfo(), engine.Client, None);
        Assert.Equal(0, await CountNotUnderAsync(rotated, "k2"));
    }

    [Fact]
    [Trait("Issue9", "9")]
    public async Task SweepStep_UndecryptableRowsFirst_LaterRowsStillRewrapped()
    {
        await using var app = await StartOnCatalogAsync(null, new()
        {
            ["Secrets:Keys:k1"] = SecretProtector.GenerateKey(),
            ["Secrets:Keys:k2"] = SecretProtector.GenerateKey(),
            ["Secrets:CurrentKeyId"] = "k1",
            ["Secrets:RewrapBatchSize"] = "2",
        });
        var pools = new List<Pool>();
        for (var i = 0; i < 3; i++)
        {
            pools.Add(await app.AddPoolAsync(fixture.Pools[i], 10));
        }

        // The first two were made with a key this deployment no longer has.
        await using (var cmd = app.Catalog.CreateCommand("UPDATE db_servers SET admin_password_encrypted = 'v2:gone:' || md5(name) WHERE id = ANY(@ids)"))
        {
            cmd.Parameters.AddWithValue("ids", new[] { pools[0].Id, pools[1].Id });
            await cmd.ExecuteNonQueryAsync();
        }

        await using var rotated = await StartOnCatalogAsync(app, new()
        {
            ["Secrets:Keys:k1"] = app.Get<IConfiguration>()["Secrets:Keys:k1"],
            ["Secrets:Keys:k2"] = app.Get<IConfiguration>()["Secrets:Keys:k2"],
            ["Secrets:CurrentKeyId"] = "k2",
            ["Secrets:RewrapBatchSize"] = "2",
        });
        var keys = rotated.Get<KeyRotationService>();

        var first = await keys.RewrapStepAsync(None);
        var second = await keys.RewrapStepAsync(None);

        Assert.Equal(new RewrapSummary("k2", 0, 0, 2, 3), first);
        Assert.Equal(new RewrapSummary("k2", 1, 0, 0, 2), second);
        Assert.StartsWith("v2:k2:", await rotated.CatalogScalarAsync<string>("SELECT admin_password_encrypted FROM db_servers WHERE id = @id", ("id", pools[2].Id)));
        Assert.Contains(CapturedLogs.All, l => l.Contains($"The admin password of pool {pools[0].Name} does not decrypt", StringComparison.Ordinal));
    }

    [Fact]
    [Trait("Issue9", "9")]
    public async Task Replace_RowChangedByAConcurrentWriter_KeepsTheWritersCiphertext()
    {
        await using var app = await StartOnCatalogAsync(null, new());
        var pool = await app.AddPoolAsync(fixture.Pools[0], 10);
        var store = app.Get<AdminPasswordStore>();
        var protector = app.Get<SecretProtector>();
        var purpose = PoolAdminPasswords.Purpose(pool.Name);
        var writers = protector.Protect("the writer's new password", purpose);
        await using (var cmd = app.Catalog.CreateCommand("UPDATE db_servers SET admin_password_encrypted = @c WHERE id = @id"))
        {
            cmd.Parameters.AddWithValue("c", writers);
            cmd.Parameters.AddWithValue("id", pool.Id);
            await cmd.ExecuteNonQueryAsync();
        }

        // The re-wrap read the row before the writer; its compare-and-set must lose.
        var replaced = await store.ReplaceAsync(pool.Id, pool.AdminPasswordEncrypted, protector.Protect(fixture.Pools[0].Password, purpose), "k", "test", None);

        Assert.False(replaced);
        Assert.Equal(writers, await app.CatalogScalarAsync<string>("SELECT admin_password_encrypted FROM db_servers WHERE id = @id", ("id", pool.Id)));
    }
}

/// <summary>The keyring on its own (issue 9, item 9): which configurations start, and which key decrypts which format. No catalog.</summary>
[Trait("Category", Tier.Unit)]
public sealed class KeyringTests
{
    [Theory]
    [Trait("Issue9", "9")]
    [InlineData("short-key")]
    [InlineData("unknown-current")]
    [InlineData("two-keys-no-current")]
    [InlineData("no-key")]
    [InlineData("bad-key-id")]
    public async Task Options_UnusableKeyring_FailsAtStartWithoutKeyMaterial(string problem)
    {
        var good = SecretProtector.GenerateKey();
        var shortKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        Dictionary<string, string?> settings = problem switch
        {
            "short-key" => new() { ["Secrets:Key"] = "", ["Secrets:Keys:k1"] = shortKey, ["Secrets:CurrentKeyId"] = "k1" },
            "unknown-current" => new() { ["Secrets:Key"] = good, ["Secrets:CurrentKeyId"] = "k9" },
            "two-keys-no-current" => new() { ["Secrets:Key"] = good, ["Secrets:Keys:k2"] = SecretProtector.GenerateKey() },
            "no-key" => new() { ["Secrets:Key"] = "" },
            _ => new() { ["Secrets:Key"] = "", ["Secrets:Keys:a.b"] = good, ["Secrets:CurrentKeyId"] = "a.b" },
        };
        await using var app = OfflineApp.Start(settings);

        var error = Assert.Throws<OptionsValidationException>(() => app.Get<IOptions<SecretsOptions>>().Value);

        Assert.False(error.Message.Contains(good, StringComparison.Ordinal) || error.Message.Contains(shortKey, StringComparison.Ordinal), "a key is in the message");
        Assert.Contains("Secrets:", error.Message);
    }

    [Fact]
    [Trait("Issue9", "9")]
    public void Unprotect_KeyIdsAndFormats_DecryptWithTheNamedKeyOnly()
    {
        var oldKey = SecretProtector.GenerateKey();
        var single = new SecretProtector(Options.Create(new SecretsOptions { Key = oldKey }));
        var rotated = new SecretProtector(Options.Create(new SecretsOptions
        {
            Key = oldKey,
            Keys = new() { ["k2"] = SecretProtector.GenerateKey() },
            CurrentKeyId = "k2",
        }));
        var madeBefore = single.Protect("secret", "p");
        var firstFormat = KeyRotationTests.FirstFormat(oldKey, "secret", "p");

        Assert.Equal(SecretKeyring.LegacyKeyId(Convert.FromBase64String(oldKey)), single.CurrentKeyId);
        Assert.Equal(single.CurrentKeyId, SecretProtector.KeyIdOf(madeBefore));
        Assert.Null(SecretProtector.KeyIdOf(firstFormat));
        Assert.Equal("secret", single.Unprotect(firstFormat, "p"));
        Assert.Equal("secret", rotated.Unprotect(madeBefore, "p"));
        Assert.Equal("secret", rotated.Unprotect(firstFormat, "p"));
        var rewrapped = rotated.Rewrap(madeBefore, "p")!;
        Assert.StartsWith("v2:k2:", rewrapped);
        Assert.Null(rotated.Rewrap(rewrapped, "p"));
        Assert.ThrowsAny<CryptographicException>(() => single.Unprotect(rewrapped, "p")); // k2 is not configured there
        Assert.ThrowsAny<CryptographicException>(() => rotated.Unprotect(madeBefore, "other purpose"));
        Assert.ThrowsAny<CryptographicException>(() => rotated.Unprotect("v2:k2:not-base64!", "p"));
    }
}
