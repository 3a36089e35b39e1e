using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Azure.Storage.Queues;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// Reads everything a task hub keeps in Azure Storage (Azurite): every entity of every table, every message the queues let
/// peek (poison queues too) and every blob, of every table, queue and container whose name begins with the hub's name
/// (tables as named, queues and containers lower-cased, as the Durable Task Azure Storage provider names them). Each value
/// is searched as it is and as what it decodes to: JSON string values, base64, gzip (large payloads are gzip blobs), to a
/// few levels deep. Findings name a place and a needle's index, never the needle.
/// </summary>
internal sealed partial class TaskHubScan(string connectionString, string hubName)
{
    private const int MaxDepth = 5;

    public sealed record Finding(string Place, int Needle);

    public sealed record Result(
        int Tables, int Entities, int Queues, int Messages, int Containers, int Blobs, IReadOnlyList<string> Names, IReadOnlyList<Finding> Findings)
    {
        public int Items => Entities + Messages + Blobs;

        public int CountOf(int needle) => Findings.Count(f => f.Needle == needle);
    }

    public TableServiceClient Tables { get; } = new(connectionString);

    public QueueServiceClient Queues { get; } = new(connectionString);

    public BlobServiceClient Blobs { get; } = new(connectionString);

    private string QueuePrefix => hubName.ToLowerInvariant();

    public async Task<Result> ScanAsync(IReadOnlyList<string> needles, CancellationToken ct = default)
    {
        var findings = new List<Finding>();
        var names = new List<string>();
        var (tables, entities, queues, messages, containers, blobs) = (0, 0, 0, 0, 0, 0);

        await foreach (var table in Tables.QueryAsync(cancellationToken: ct))
        {
            if (!table.Name.StartsWith(hubName, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            tables++;
            names.Add(table.Name);
            await foreach (var entity in Tables.GetTableClient(table.Name).QueryAsync<TableEntity>(cancellationToken: ct))
            {
                entities++;
                foreach (var (property, value) in entity)
                {
                    var place = $"table {table.Name} entity {entity.PartitionKey}/{entity.RowKey} property {property}";
                    Search(place, value switch
                    {
                        byte[] bytes => Expand(bytes),
                        BinaryData data => Expand(data.ToArray()),
                        _ => Expand(Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? ""),
                    }, needles, findings);
                }
            }
        }

        await foreach (var queue in Queues.GetQueuesAsync(cancellationToken: ct))
        {
            if (!queue.Name.StartsWith(QueuePrefix, StringComparison.Ordinal))
            {
                continue;
            }

            queues++;
            names.Add(queue.Name);
            // A peek sees at most 32 messages, and not those a worker holds invisible: the hub is idle when it is scanned.
            foreach (var message in (await Queues.GetQueueClient(queue.Name).PeekMessagesAsync(32, ct)).Value)
            {
                messages++;
                Search($"queue {queue.Name} message {message.MessageId}", Expand(message.Body.ToArray()), needles, findings);
            }
        }

        await foreach (var container in Blobs.GetBlobContainersAsync(cancellationToken: ct))
        {
            if (!container.Name.StartsWith(QueuePrefix, StringComparison.Ordinal))
            {
                continue;
            }

            containers++;
            names.Add(container.Name);
            var client = Blobs.GetBlobContainerClient(container.Name);
            await foreach (var blob in client.GetBlobsAsync(new Azure.Storage.Blobs.Models.GetBlobsOptions { Traits = Azure.Storage.Blobs.Models.BlobTraits.Metadata }, ct))
            {
                blobs++;
                var content = await client.GetBlobClient(blob.Name).DownloadContentAsync(ct);
                Search($"container {container.Name} blob {blob.Name}", Expand(content.Value.Content.ToArray()), needles, findings);
                foreach (var (key, value) in blob.Metadata ?? new Dictionary<string, string>())
                {
                    Search($"container {container.Name} blob {blob.Name} metadata {key}", Expand(value), needles, findings);
                }
            }
        }

        return new Result(tables, entities, queues, messages, containers, blobs, names, findings);
    }

    private static void Search(string place, IReadOnlyCollection<string> texts, IReadOnlyList<string> needles, List<Finding> findings)
    {
        for (var i = 0; i < needles.Count; i++)
        {
            if (texts.Any(text => SeenSecrets.CountIn(text, [needles[i]]) > 0))
            {
                findings.Add(new Finding(place, i));
            }
        }
    }

    /// <summary>The text itself and everything it decodes to.</summary>
    public static IReadOnlyCollection<string> Expand(string text)
    {
        var texts = new HashSet<string>(StringComparer.Ordinal);
        Expand(text, 0, texts);
        return texts;
    }

    public static IReadOnlyCollection<string> Expand(byte[] bytes)
    {
        var texts = new HashSet<string>(StringComparer.Ordinal);
        Expand(bytes, 0, texts);
        return texts;
    }

    private static void Expand(byte[] bytes, int depth, HashSet<string> texts)
    {
        if (depth > MaxDepth)
        {
            return;
        }

        if (bytes is [0x1f, 0x8b, ..])
        {
            try
            {
                using var gzip = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress);
                using var clear = new MemoryStream();
                gzip.CopyTo(clear);
                Expand(clear.ToArray(), depth + 1, texts);
                return;
            }
            catch (InvalidDataException)
            {
                // Not gzip after all: searched as text below.
            }
        }

        Expand(Encoding.UTF8.GetString(bytes), depth, texts);
    }

    private static void Expand(string text, int depth, HashSet<string> texts)
    {
        if (depth > MaxDepth || !texts.Add(text))
        {
            return;
        }

        var trimmed = text.Trim();
        if (trimmed is ['{', ..] or ['[', ..] or ['"', ..])
        {
            try
            {
                using var document = JsonDocument.Parse(trimmed);
                foreach (var value in Strings(document.RootElement))
                {
                    Expand(value, depth + 1, texts);
                }
            }
            catch (JsonException)
            {
                // Not JSON: searched as it is.
            }
        }

        if (trimmed.Length >= 16 && trimmed.Length % 4 == 0 && Base64().IsMatch(trimmed))
        {
            Expand(Convert.FromBase64String(trimmed), depth + 1, texts);
        }
    }

    private static IEnumerable<string> Strings(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => element.EnumerateObject().SelectMany(p => Strings(p.Value).Prepend(p.Name)),
        JsonValueKind.Array => element.EnumerateArray().SelectMany(Strings),
        JsonValueKind.String => [element.GetString()!],
        _ => [],
    };

    [GeneratedRegex("^[A-Za-z0-9+/]+={0,2}$")]
    private static partial Regex Base64();
}
