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
    private readonly Lazy<BlobContainerClient> _container = new(() =>
    {
        var connection = configuration["AzureWebJobsStorage"];
        if (string.IsNullOrWhiteSpace(connection))
        {
            throw new InvalidOperationException("Backups need AzureWebJobsStorage as a connection string (a managed identity is not supported yet).");
        }

        return new BlobServiceClient(connection).GetBlobContainerClient(options.Value.Container);
    });

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
