using Azure.Core;
using Azure.Identity;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Specialized;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace TenantDb.Functions.Backups;

/// <summary>
/// The backups' blob container, in the storage the app already has (<c>AzureWebJobsStorage</c>, Azurite here); created on
/// first use. Blob names are <c>{instance_id}/{backup_id}.dump</c>: made from ids, never from a request's text.
/// </summary>
public sealed class BackupBlobs(IConfiguration configuration, IOptions<BackupsOptions> options)
{
    private readonly Lazy<BlobContainerClient> _container = new(() => ContainerFor(configuration, options.Value.Container));

    /// <summary>
    /// The container in the app's own storage, named the way the Functions host names it: <c>AzureWebJobsStorage</c> as a
    /// connection string (Azurite, or an account key), or an identity-based connection (<c>AzureWebJobsStorage__blobServiceUri</c>
    /// or <c>__accountName</c>, with <c>__credential=managedidentity</c> and <c>__clientId</c> for a user-assigned identity, as the
    /// Bicep deployment sets them); no key is then used or kept.
    /// </summary>
    public static BlobContainerClient ContainerFor(IConfiguration configuration, string container)
    {
        if (configuration["AzureWebJobsStorage"] is { Length: > 0 } connection)
        {
            return new BlobServiceClient(connection).GetBlobContainerClient(container);
        }

        var section = configuration.GetSection("AzureWebJobsStorage");
        var serviceUri = section["blobServiceUri"] is { Length: > 0 } uri ? new Uri(uri)
            : section["accountName"] is { Length: > 0 } account ? new Uri($"https://{account}.blob.core.windows.net")
            : throw new InvalidOperationException(
                "Backups need the app's storage: AzureWebJobsStorage (a connection string) or AzureWebJobsStorage__blobServiceUri / __accountName.");
        TokenCredential credential = string.Equals(section["credential"], "managedidentity", StringComparison.OrdinalIgnoreCase)
            ? new ManagedIdentityCredential(section["clientId"] is { Length: > 0 } clientId ? ManagedIdentityId.FromUserAssignedClientId(clientId) : ManagedIdentityId.SystemAssigned)
            : new DefaultAzureCredential();
        return new BlobServiceClient(serviceUri, credential).GetBlobContainerClient(container);
    }

    private int _created;

    public static string BlobNameOf(Guid instanceId, Guid backupId) => $"{instanceId:D}/{backupId:D}.dump";

    public async Task<BlockBlobClient> BlobAsync(string blobName, CancellationToken ct)
    {
        var container = _container.Value;
        if (Volatile.Read(ref _created) == 0)
        {
            await container.CreateIfNotExistsAsync(cancellationToken: ct);
            Volatile.Write(ref _created, 1);
        }

        return container.GetBlockBlobClient(blobName);
    }
}
