using System.Reflection;
using Microsoft.DurableTask.Client;

namespace TenantDb.Functions.Tests.Infrastructure;

/// <summary>
/// The client a Functions host hands to a <c>[DurableClient]</c> parameter: the extension's (internal)
/// <c>FunctionsDurableTaskClient</c> over an engine's client, carrying the host's webhook base URL and the query string
/// with its system key, so <c>CreateHttpManagementPayload</c> behaves as under the Functions host.
/// </summary>
public static class FunctionsBinding
{
    public const string SystemKey = "test-system-key-5a0c1e7d";
    public const string WebhookBaseUrl = "http://127.0.0.1:7071/runtime/webhooks/durabletask";

    public static DurableTaskClient Client(DurableTaskClient inner, string httpBaseUrl = WebhookBaseUrl)
    {
        var type = typeof(Microsoft.Azure.Functions.Worker.DurableClientAttribute).Assembly
            .GetType("Microsoft.Azure.Functions.Worker.FunctionsDurableTaskClient", throwOnError: true)!;
        var constructor = type.GetConstructors().Single(c => c.GetParameters() is [{ ParameterType: var first }, { ParameterType: var second }, { ParameterType: var third }, ..]
            && first == typeof(DurableTaskClient) && second == typeof(string) && third == typeof(string));
        object?[] arguments = [inner, $"taskHub={inner.Name}&connection=Storage&code={SystemKey}", httpBaseUrl,
            .. constructor.GetParameters().Skip(3).Select(_ => (object?)null)];
        return (DurableTaskClient)constructor.Invoke(BindingFlags.DoNotWrapExceptions, null, arguments, null);
    }
}
