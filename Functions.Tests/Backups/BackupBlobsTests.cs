using Microsoft.Extensions.Configuration;
using TenantDb.Functions.Backups;

namespace TenantDb.Functions.Tests.Backups;

/// <summary>
/// Where the backups' container is, from the app's storage settings as the Functions host reads them: a connection string
/// (Azurite, an account key), or the identity-based form the Bicep deployment sets (no key at all). No call leaves the process.
/// </summary>
[Trait("Category", Tier.Unit)]
public sealed class BackupBlobsTests
{
    private static IConfiguration Settings(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.ToDictionary(v => v.Key, v => (string?)v.Value)).Build();

    [Fact]
    public void ContainerFor_ConnectionString_UsesItsAccountAndKey()
    {
        var container = BackupBlobs.ContainerFor(Settings(("AzureWebJobsStorage", "UseDevelopmentStorage=true")), "tenantdb-backups");

        Assert.Equal("http://127.0.0.1:10000/devstoreaccount1/tenantdb-backups", container.Uri.ToString());
        Assert.True(container.CanGenerateSasUri);
    }

    [Fact]
    public void ContainerFor_ManagedIdentityAsTheBicepSetsIt_UsesTheAccountWithoutAKey()
    {
        // The names main.bicep gives the app (AzureWebJobsStorage__accountName, __credential, __clientId), as configuration keys.
        var container = BackupBlobs.ContainerFor(Settings(
            ("AzureWebJobsStorage:accountName", "tenantdbstore"),
            ("AzureWebJobsStorage:credential", "managedidentity"),
            ("AzureWebJobsStorage:clientId", "00000000-0000-0000-0000-000000000001")), "tenantdb-backups");

        Assert.Equal("https://tenantdbstore.blob.core.windows.net/tenantdb-backups", container.Uri.ToString());
        Assert.False(container.CanGenerateSasUri);
    }

    [Fact]
    public void ContainerFor_BlobServiceUri_IsUsedAsGiven()
    {
        var container = BackupBlobs.ContainerFor(Settings(("AzureWebJobsStorage:blobServiceUri", "https://other.blob.core.windows.net")), "c");

        Assert.Equal("https://other.blob.core.windows.net/c", container.Uri.ToString());
        Assert.False(container.CanGenerateSasUri);
    }

    [Fact]
    public void ContainerFor_NoStorageSetting_IsAClearError()
    {
        var error = Assert.Throws<InvalidOperationException>(() => BackupBlobs.ContainerFor(Settings(), "c"));

        Assert.Contains("AzureWebJobsStorage", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bicep_GivesTheAppTheIdentityBasedStorageSettingsTheBackupsRead()
    {
        var bicep = TenantDb.Functions.Tests.Deploy.RepoFiles.Read("infra/azure/main.bicep");

        Assert.Contains("'AzureWebJobsStorage__accountName'", bicep, StringComparison.Ordinal);
        Assert.Contains("'AzureWebJobsStorage__credential', value: 'managedidentity'", bicep, StringComparison.Ordinal);
    }
}
