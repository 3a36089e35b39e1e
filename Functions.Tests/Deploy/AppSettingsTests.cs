using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using TenantDb.Functions.Tests.Infrastructure;

namespace TenantDb.Functions.Tests.Deploy;

/// <summary>
/// The settings a deployment sets are the settings the app reads, one to one, both ways: the app settings of
/// <c>infra/azure/main.bicep</c> and the keys of <c>local.settings.json.example</c> against the keys the options classes bind
/// (<see cref="AppSettingKeys"/>). A new option missing from the Bicep or the example fails here, as does a setting there
/// that nothing reads (a typo, a renamed option). The Bicep is read as text (<see cref="BicepAppSettings"/>): no Bicep
/// compiler runs here.
/// </summary>
[Trait("Category", Tier.Unit)]
public sealed partial class AppSettingsTests
{
    /// <summary>
    /// Settings of the Functions host and the platform, which no options class binds. Each says why it is there.
    /// </summary>
    private static readonly Dictionary<string, string> HostOnly = new(StringComparer.OrdinalIgnoreCase)
    {
        ["FUNCTIONS_EXTENSION_VERSION"] = "the Functions runtime version (~4)",
        ["FUNCTIONS_WORKER_RUNTIME"] = "the worker the host starts: dotnet-isolated",
        ["AzureWebJobsStorage"] = "the task hub's storage as a connection string (local runs, the container)",
        ["AzureWebJobsStorage__accountName"] = "the task hub's storage reached with a managed identity (Azure): its account",
        ["AzureWebJobsStorage__credential"] = "… with the managed identity",
        ["AzureWebJobsStorage__clientId"] = "… the user-assigned one",
        ["WEBSITE_CONTENTAZUREFILECONNECTIONSTRING"] = "the Elastic Premium plan's content share (Azure Files; key-based only)",
        ["WEBSITE_CONTENTSHARE"] = "the content share's name",
    };

    /// <summary>
    /// Keys of the code a deployment leaves unset on purpose. <c>Secrets:Keys:&lt;id&gt;</c>: more secrets keys exist only
    /// during a key rotation (README "Rotating the secrets key"); the operator adds them as Key Vault references then.
    /// </summary>
    private static readonly HashSet<string> LeftUnsetInAzure = new(StringComparer.OrdinalIgnoreCase) { "Secrets__Keys__*" };

    /// <summary>The example lists LocalHost's own settings too (LocalHost/, its own options class, not the app's).</summary>
    private static bool IsLocalHostSetting(string name) => name.StartsWith("LocalHost__", StringComparison.Ordinal);

    [Fact]
    public void Code_HasTheKeysThisTestExpects()
    {
        // The walk must find the options classes at all: a few keys of different shapes, so an empty walk cannot pass.
        Assert.Contains("Allocation__Strategy", AppSettingKeys.FromCode);
        Assert.Contains("Pools__Tiers__*__MaxConnections", AppSettingKeys.FromCode);
        Assert.DoesNotContain("Pools__Tiers__*__ConnectionLimit", AppSettingKeys.FromCode); // an alias of MaxConnections
        Assert.Contains("Provisioning__ServerSettings__*", AppSettingKeys.FromCode);
        Assert.Contains("Provisioning__Swarm__Mode", AppSettingKeys.FromCode);
        Assert.Contains("ConnectionStrings__Catalog", AppSettingKeys.FromCode);
        Assert.DoesNotContain("Api__BaseUrl", AppSettingKeys.FromCode); // get-only: not a setting
        Assert.True(AppSettingKeys.FromCode.Count > 60, $"only {AppSettingKeys.FromCode.Count} keys found");
    }

    [Fact]
    public void Bicep_SetsEveryKeyTheCodeReads_AndNothingElse()
    {
        var settings = BicepAppSettings.Read();
        var names = settings.Select(s => s.Name).ToList();

        var duplicates = names.GroupBy(n => n, StringComparer.OrdinalIgnoreCase).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(duplicates.Count == 0, "Set twice in the Bicep: " + string.Join(", ", duplicates));

        var unknown = names.Where(n => !HostOnly.ContainsKey(n) && AppSettingKeys.KeyOf(n) is null).ToList();
        Assert.True(unknown.Count == 0, "Bicep app settings no options class binds (nor HostOnly lists): " + string.Join(", ", unknown));

        var missing = AppSettingKeys.FromCode.Where(k => !LeftUnsetInAzure.Contains(k) && !names.Any(n => AppSettingKeys.Matches(k, n))).ToList();
        Assert.True(missing.Count == 0, "Settings the code reads that the Bicep does not set: " + string.Join(", ", missing));
    }

    [Fact]
    public void LocalSettingsExample_ListsEveryKeyTheCodeReads_AndNothingElse()
    {
        using var example = JsonDocument.Parse(RepoFiles.Read("local.settings.json.example"));
        var names = example.RootElement.GetProperty("Values").EnumerateObject().Select(p => p.Name)
            .Concat(example.RootElement.GetProperty("ConnectionStrings").EnumerateObject().Select(p => $"ConnectionStrings__{p.Name}"))
            .Select(n => Placeholder().Replace(n, "x")) // Secrets__Keys__<key id>
            .ToList();

        var unknown = names.Where(n => !HostOnly.ContainsKey(n) && !IsLocalHostSetting(n) && AppSettingKeys.KeyOf(n) is null).ToList();
        Assert.True(unknown.Count == 0, "local.settings.json.example settings no options class binds: " + string.Join(", ", unknown));

        var missing = AppSettingKeys.FromCode.Where(k => !names.Any(n => AppSettingKeys.Matches(k, n))).ToList();
        Assert.True(missing.Count == 0, "Settings the code reads that local.settings.json.example does not list: " + string.Join(", ", missing));
    }

    /// <summary>The settings the Bicep gives as plain values, with the two Key Vault secrets as a test key and catalog: the app starts.</summary>
    [Fact]
    public async Task Bicep_LiteralValues_PassTheStartUpValidation()
    {
        var literals = BicepAppSettings.Read()
            .Where(s => s.Literal is not null && !HostOnly.ContainsKey(s.Name))
            .ToDictionary(s => s.Name.Replace("__", ":", StringComparison.Ordinal), s => (string?)s.Literal);
        Assert.True(literals.Count > 50, $"only {literals.Count} literal settings");

        await using var app = OfflineApp.Start(literals);

        app.Get<IStartupValidator>().Validate();
    }

    [Fact]
    public void Bicep_RunsTheIsolatedWorker_OnDotNet10_WithSecretsFromKeyVault_AndStorageByIdentity()
    {
        var settings = BicepAppSettings.Read().ToDictionary(s => s.Name, s => s.Value, StringComparer.OrdinalIgnoreCase);
        var text = BicepAppSettings.Text;

        Assert.Equal("'dotnet-isolated'", settings["FUNCTIONS_WORKER_RUNTIME"]);
        Assert.Equal("'~4'", settings["FUNCTIONS_EXTENSION_VERSION"]);
        Assert.Contains("linuxFxVersion: 'DOTNET-ISOLATED|10.0'", text, StringComparison.Ordinal);

        // The secrets key and the catalog's password live in Key Vault only; the app settings hold references.
        foreach (var secret in new[] { "Secrets__Key", "ConnectionStrings__Catalog" })
        {
            Assert.Matches(@"^'@Microsoft\.KeyVault\(SecretUri=\$\{[A-Za-z]+\.properties\.secretUri\}\)'$", settings[secret]);
        }

        Assert.Contains("keyVaultReferenceIdentity: identity.id", text, StringComparison.Ordinal);
        Assert.Contains("enableRbacAuthorization: true", text, StringComparison.Ordinal);

        // The task hub: by the user-assigned identity, never by a key in AzureWebJobsStorage.
        Assert.False(settings.ContainsKey("AzureWebJobsStorage"));
        Assert.Equal("'managedidentity'", settings["AzureWebJobsStorage__credential"]);
        Assert.Equal("identity.properties.clientId", settings["AzureWebJobsStorage__clientId"]);
        Assert.Equal("insights.properties.ConnectionString", settings["APPLICATIONINSIGHTS_CONNECTION_STRING"]);

        foreach (var resource in new[]
        {
            "'Microsoft.Web/sites@", "'Microsoft.Web/serverfarms@", "'Microsoft.Storage/storageAccounts@",
            "'Microsoft.DBforPostgreSQL/flexibleServers@", "'Microsoft.DBforPostgreSQL/flexibleServers/databases@",
            "'Microsoft.KeyVault/vaults@", "'Microsoft.KeyVault/vaults/secrets@", "'Microsoft.Insights/components@",
            "'Microsoft.ManagedIdentity/userAssignedIdentities@", "'Microsoft.Authorization/roleAssignments@",
        })
        {
            Assert.Contains(resource, text, StringComparison.Ordinal);
        }

        Assert.Contains("tier: 'ElasticPremium'", text, StringComparison.Ordinal);
        // The roles the identity needs: blob, queue and table data on the task hub's account, secrets in the vault.
        foreach (var role in new[] { "storageBlobDataOwner", "storageQueueDataContributor", "storageTableDataContributor", "keyVaultSecretsUser" })
        {
            Assert.Contains($"roles.{role}", text, StringComparison.Ordinal);
        }
    }

    /// <summary>The parameters file sets exactly the Bicep's parameters, every one without a default, and no secret in clear.</summary>
    [Fact]
    public void ParametersFile_MatchesTheBicep_AndReadsSecretsFromTheEnvironment()
    {
        var declared = BicepAppSettings.Parameters();
        var text = RepoFiles.Read("infra/azure/main.bicepparam");
        Assert.Contains("using './main.bicep'", text, StringComparison.Ordinal);
        var given = ParamLine().Matches(text).ToDictionary(m => m.Groups["name"].Value, m => m.Groups["value"].Value.Trim(), StringComparer.Ordinal);

        Assert.Empty(given.Keys.Except(declared.Keys));
        Assert.Empty(declared.Where(p => !p.Value).Select(p => p.Key).Except(given.Keys));
        foreach (var secure in SecureParam().Matches(BicepAppSettings.Text).Select(m => m.Groups["name"].Value))
        {
            Assert.StartsWith("readEnvironmentVariable('", given[secure], StringComparison.Ordinal);
        }

        Assert.Contains("secretsKey", given.Keys);
    }

    [GeneratedRegex("<[^>]+>")]
    private static partial Regex Placeholder();

    [GeneratedRegex(@"^param (?<name>[A-Za-z0-9_]+) = (?<value>.+)$", RegexOptions.Multiline)]
    private static partial Regex ParamLine();

    [GeneratedRegex(@"@secure\(\)\s*\r?\nparam (?<name>[A-Za-z0-9_]+) ")]
    private static partial Regex SecureParam();
}
