using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>An answer as it came over the socket.</summary>
internal sealed record RawResponse(int Status, string? ContentType, string Head, string Body)
{
    /// <summary>Status line, headers and body: where a leaked key would show.</summary>
    public string Raw => Head + "\r\n\r\n" + Body;
}

/// <summary>HTTP/1.1 over a plain socket, one connection per request (<c>Connection: close</c>), chunked answers decoded.</summary>
internal static class RawHttp
{
    public static async Task<RawResponse> SendAsync(int port, Probe probe, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", port, timeout.Token);
        var stream = client.GetStream();

        var head = new StringBuilder($"{probe.Method} {probe.Target} HTTP/1.1\r\n");
        if (!probe.Headers.Any(h => h.Name.Equals("Host", StringComparison.OrdinalIgnoreCase)))
        {
            head.Append(CultureInfo.InvariantCulture, $"Host: 127.0.0.1:{port}\r\n");
        }

        foreach (var (name, value) in probe.Headers)
        {
            head.Append(name).Append(": ").Append(value).Append("\r\n");
        }

        if (probe.Body is not null && !probe.Headers.Any(h => h.Name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)))
        {
            head.Append(CultureInfo.InvariantCulture, $"Content-Length: {probe.Body.Length}\r\n");
        }

        head.Append("Connection: close\r\n\r\n");
        await stream.WriteAsync(Encoding.UTF8.GetBytes(head.ToString()), timeout.Token);

        // The server may answer (and close) before it has read a large body: send it alongside reading the answer.
        var sending = probe.Body is null ? Task.CompletedTask : WriteQuietlyAsync(stream, probe.Body, timeout.Token);
        using var received = new MemoryStream();
        var buffer = new byte[64 * 1024];
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, timeout.Token)) > 0)
            {
                received.Write(buffer, 0, read);
            }
        }
        catch (IOException) when (HasHead(received))
        {
            // Reset after the answer (the server closed with body bytes unread): the answer is what counts.
        }

        await sending;
        return Parse(received.ToArray());
    }

    private static async Task WriteQuietlyAsync(NetworkStream stream, byte[] body, CancellationToken ct)
    {
        try
        {
            await stream.WriteAsync(body, ct);
        }
        catch (IOException)
        {
            // The server stopped reading (it answered already).
        }
    }

    private static bool HasHead(MemoryStream received) => received.ToArray().AsSpan().IndexOf("\r\n\r\n"u8) >= 0;

    private static RawResponse Parse(byte[] data)
    {
        var end = data.AsSpan().IndexOf("\r\n\r\n"u8);
        if (end < 0)
        {
            throw new FormatException($"no HTTP answer ({data.Length} bytes)");
        }

        var head = Encoding.UTF8.GetString(data, 0, end);
        var lines = head.Split("\r\n");
        var status = int.Parse(lines[0].Split(' ')[1], CultureInfo.InvariantCulture);
        var headers = lines.Skip(1).Select(l => l.Split(':', 2)).Where(p => p.Length == 2)
            .Select(p => (Name: p[0].Trim(), Value: p[1].Trim())).ToList();
        var body = data.AsSpan(end + 4).ToArray();
        if (headers.Any(h => h.Name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase) && h.Value.Contains("chunked", StringComparison.OrdinalIgnoreCase)))
        {
            body = Dechunk(body);
        }

        var contentType = headers.FirstOrDefault(h => h.Name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase)).Value;
        return new RawResponse(status, contentType?.Split(';')[0].Trim(), head, Encoding.UTF8.GetString(body));
    }

    private static byte[] Dechunk(byte[] body)
    {
        using var output = new MemoryStream();
        var at = 0;
        while (at < body.Length)
        {
            var lineEnd = body.AsSpan(at).IndexOf("\r\n"u8);
            if (lineEnd < 0)
            {
                break;
            }

            var size = int.Parse(Encoding.ASCII.GetString(body, at, lineEnd).Split(';')[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            at += lineEnd + 2;
            if (size == 0)
            {
                break;
            }

            output.Write(body, at, Math.Min(size, body.Length - at));
            at += size + 2;
        }

        return output.ToArray();
    }
}
