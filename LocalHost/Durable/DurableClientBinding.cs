using System.Reflection;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;

namespace TenantDb.LocalHost.Durable;

/// <summary>
/// What a <c>[DurableClient]</c> parameter receives, as the Functions host hands it to a worker: the extension's own
/// per-binding client (<c>FunctionsDurableTaskClient</c>) over the engine's client, carrying the host's webhook base URL
/// and the query string with the system key. So <c>client.CreateHttpManagementPayload(id)</c> works here as in Azure:
/// URLs on this host's public address, never the request's Host header, with the system key, never a caller's key.
/// </summary>
internal sealed class DurableClientBinding
{
    /// <summary>The host name the Functions platform gives an app (Azure sets it; so does Core Tools, to localhost:port).</summary>
    public const string HostNameSetting = "WEBSITE_HOSTNAME";

    public const string WebhookPath = "/runtime/webhooks/durabletask";

    private static readonly ConstructorInfo? Constructor = typeof(DurableClientAttribute).Assembly
        .GetType("Microsoft.Azure.Functions.Worker.FunctionsDurableTaskClient")?
        .GetConstructors()
        .SingleOrDefault(c => c.GetParameters() is [{ ParameterType: var inner }, { ParameterType: var query }, { ParameterType: var baseUrl }, .. var rest]
            && inner == typeof(DurableTaskClient) && query == typeof(string) && baseUrl == typeof(string)
            && rest.All(p => !p.ParameterType.IsValueType));

    private readonly DurableTaskClient _inner;
    private readonly IServer _server;
    private readonly string? _hostName;

    public DurableClientBinding(DurableTaskClient inner, DurableEngine engine, FunctionKeys keys, IServer server, IConfiguration configuration)
    {
        _inner = inner;
        _server = server;
        _hostName = configuration[HostNameSetting];
        QueryString = $"taskHub={Uri.EscapeDataString(engine.HubName)}&connection=Storage&code={Uri.EscapeDataString(keys.SystemKey)}";
    }

    /// <summary>Whether this Worker.Extensions.DurableTask version's per-binding client can be made.</summary>
    public static bool IsSupported => Constructor is not null;

    public static Type ClientType => Constructor?.DeclaringType ?? typeof(DurableTaskClient);

    /// <summary>The query string every management URL carries (task hub, connection, system key).</summary>
    public string QueryString { get; }

    /// <summary><c>http://{WEBSITE_HOSTNAME}/runtime/webhooks/durabletask</c>, else on the address Kestrel listens on.</summary>
    public string HttpBaseUrl => (string.IsNullOrEmpty(_hostName)
        ? _server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()?.TrimEnd('/')
            ?? throw new InvalidOperationException("The server has no address yet.")
        : "http://" + _hostName) + WebhookPath;

    /// <summary>A host name (and port) that makes a valid origin: no scheme, path, user info, query or fragment.</summary>
    public static bool IsValidHostName(string value) =>
        !value.Contains('/', StringComparison.Ordinal) && !value.Contains('@', StringComparison.Ordinal)
        && !value.Contains('?', StringComparison.Ordinal) && !value.Contains('#', StringComparison.Ordinal)
        && Uri.TryCreate("http://" + value, UriKind.Absolute, out var uri) && uri.PathAndQuery == "/";

    /// <summary>A new per-binding client for one invocation.</summary>
    public DurableTaskClient Create()
    {
        var constructor = Constructor ?? throw new InvalidOperationException("The per-binding durable client cannot be made.");
        object?[] arguments = [_inner, QueryString, HttpBaseUrl, .. constructor.GetParameters().Skip(3).Select(_ => (object?)null)];
        return (DurableTaskClient)constructor.Invoke(BindingFlags.DoNotWrapExceptions, null, arguments, null);
    }

    /// <summary>The status URL of an instance, as <c>CreateHttpManagementPayload</c> makes it.</summary>
    public string StatusQueryGetUri(string instanceId) => $"{HttpBaseUrl}/instances/{Uri.EscapeDataString(instanceId)}?{QueryString}";
}
