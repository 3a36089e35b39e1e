using System.Net;
using System.Net.Sockets;
using System.Text;

namespace TenantDb.Functions.Tests.Infrastructure;

/// <summary>
/// A loopback TCP proxy in front of a real server, for faults that only the wire can make: a reply lost after the server
/// acted on the request. Armed with a marker, it forwards the next client message containing that text, lets the server
/// act on it, runs a callback, then drops the server's reply and cuts that connection (once).
/// </summary>
public sealed class TcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpClient> _clients = [];
    private readonly Task _accepting;
    private string? _marker;
    private Func<Task>? _onCut;
    private int _cuts;

    public TcpProxy(int targetPort)
    {
        _targetPort = targetPort;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>How many replies were dropped so far.</summary>
    public int Cuts => Volatile.Read(ref _cuts);

    /// <summary>The next request containing <paramref name="marker"/> reaches the server; its reply never reaches the client.</summary>
    public void CutReplyTo(string marker, Func<Task>? onCut = null)
    {
        _onCut = onCut;
        Volatile.Write(ref _marker, marker);
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }

            _ = Task.Run(() => PipeAsync(client));
        }
    }

    private async Task PipeAsync(TcpClient client)
    {
        using var server = new TcpClient();
        lock (_clients)
        {
            _clients.Add(client);
            _clients.Add(server);
        }

        try
        {
            await server.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token);
            var cutPending = new Flag();
            var up = PumpAsync(client.GetStream(), server.GetStream(), inspect: cutPending, cutWhen: null, _stop.Token);
            var down = PumpAsync(server.GetStream(), client.GetStream(), inspect: null, cutWhen: cutPending, _stop.Token);
            await Task.WhenAny(up, down);
        }
        catch (Exception)
        {
            // A cut or a closed side ends the pipe; the other side sees the connection drop.
        }
        finally
        {
            client.Dispose();
        }
    }

    private async Task PumpAsync(NetworkStream from, NetworkStream to, Flag? inspect, Flag? cutWhen, CancellationToken ct)
    {
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var read = await from.ReadAsync(buffer, ct);
            if (read == 0)
            {
                return;
            }

            if (inspect is not null && Volatile.Read(ref _marker) is { } marker
                && Encoding.UTF8.GetString(buffer, 0, read).Contains(marker, StringComparison.Ordinal)
                && Interlocked.CompareExchange(ref _marker, null, marker) == marker)
            {
                inspect.Value = true;
            }

            if (cutWhen is { Value: true })
            {
                Interlocked.Increment(ref _cuts);
                if (_onCut is { } onCut)
                {
                    await onCut();
                }

                return; // the reply is dropped and both sides closed
            }

            await to.WriteAsync(buffer.AsMemory(0, read), ct);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        lock (_clients)
        {
            foreach (var c in _clients)
            {
                c.Dispose();
            }
        }

        try
        {
            await _accepting;
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }

    private sealed class Flag
    {
        private volatile bool _value;
        public bool Value { get => _value; set => _value = value; }
    }
}
