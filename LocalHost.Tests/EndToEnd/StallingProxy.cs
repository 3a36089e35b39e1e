using System.Net.Sockets;

namespace TenantDb.LocalHost.Tests.EndToEnd;

/// <summary>
/// A TCP proxy in front of Azurite that can stall: connections are accepted and held, nothing is forwarded, until resumed.
/// The shared Azurite itself is never touched.
/// </summary>
internal sealed class StallingProxy : IAsyncDisposable
{
    private readonly List<TcpListener> _listeners = [];
    private readonly List<TcpClient> _connections = [];
    private readonly CancellationTokenSource _stop = new();
    private volatile TaskCompletionSource _flowing = Open();

    public string ConnectionString { get; private set; } = "";

    public static StallingProxy Start(int blob, int queue, int table)
    {
        var proxy = new StallingProxy();
        var ports = new[] { blob, queue, table }.Select(proxy.Listen).ToArray();
        proxy.ConnectionString = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            + "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
            + $"BlobEndpoint=http://127.0.0.1:{ports[0]}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{ports[1]}/devstoreaccount1;"
            + $"TableEndpoint=http://127.0.0.1:{ports[2]}/devstoreaccount1;";
        return proxy;
    }

    public void Stall() => _flowing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Resume() => _flowing.TrySetResult();

    /// <summary>
    /// Drops every connection made so far without forwarding what it holds (a host that died while storage stalled: its
    /// requests never arrive). Later connections flow as usual once resumed.
    /// </summary>
    public void Cut()
    {
        Interlocked.Increment(ref _generation);
        lock (_connections)
        {
            foreach (var connection in _connections)
            {
                connection.Dispose();
            }

            _connections.Clear();
        }
    }

    private int _generation;

    private static TaskCompletionSource Open()
    {
        var open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        open.SetResult();
        return open;
    }

    private int Listen(int target)
    {
        var listener = new TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        _listeners.Add(listener);
        _ = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient client;
                try
                {
                    client = await listener.AcceptTcpClientAsync(_stop.Token);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }

                lock (_connections)
                {
                    _connections.Add(client);
                }

                _ = Task.Run(() => ForwardAsync(client, target));
            }
        });
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    private async Task ForwardAsync(TcpClient client, int target)
    {
        try
        {
            var generation = Volatile.Read(ref _generation);
            await _flowing.Task.WaitAsync(_stop.Token);
            if (generation != Volatile.Read(ref _generation))
            {
                return;
            }

            using var upstream = new TcpClient();
            await upstream.ConnectAsync("127.0.0.1", target, _stop.Token);
            await Task.WhenAny(PumpAsync(client.GetStream(), upstream.GetStream(), generation), PumpAsync(upstream.GetStream(), client.GetStream(), generation));
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
        {
        }
        finally
        {
            client.Dispose();
        }
    }

    private async Task PumpAsync(Stream from, Stream to, int generation)
    {
        var buffer = new byte[16 * 1024];
        int read;
        while ((read = await from.ReadAsync(buffer, _stop.Token)) > 0)
        {
            await _flowing.Task.WaitAsync(_stop.Token); // stalled: hold what arrived
            if (generation != Volatile.Read(ref _generation))
            {
                return; // cut: what it held is dropped
            }

            await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
        }
    }

    public ValueTask DisposeAsync()
    {
        _stop.Cancel();
        foreach (var listener in _listeners)
        {
            listener.Stop();
        }

        lock (_connections)
        {
            foreach (var connection in _connections)
            {
                connection.Dispose();
            }
        }

        _stop.Dispose();
        return ValueTask.CompletedTask;
    }
}
